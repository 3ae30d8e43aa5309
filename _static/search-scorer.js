// The site's search tuning (html_search_scorer; Sphinx loads it on the search page).
//
// Ranking: index entries score 100 on an exact match. The glossary defines its terms
// with index entries too; a page that has its own main entry for a term explains it
// at length, so on a tie the glossary comes second.
//
// Before Sphinx's search runs, the query is made forgiving (guideForgivingQuery):
// - either quote, and none: lazy="raise" and lazy=raise search as lazy='raise', the
//   spelling of the index entries;
// - a one-letter typo (a letter missing, extra, wrong or two swapped) in a word the
//   site does not know becomes the word it knows: an index entry's word first
//   (MisingGreenlet: MissingGreenlet), else a word of the text;
// - a word that is an index entry of its own (an error name: MissingGreenlet in
//   "MissingGreenlet asyncpg") lifts the pages whose main entry it is above pages
//   that merely mention every word.
// Search excerpts leave out proof marks: what a claim was proven on is not text to
// read in a list of results.
var GUIDE_ENTRY_BOOST = 30;
var GUIDE_GLOSSARY = "guides/glossary";

var Scorer = {
  score: function (result) {
    var docname = result[0];
    var score = result[4];
    var kind = result[6];
    if (kind === "index" && docname === GUIDE_GLOSSARY) score -= 1;
    var boost = (Search.guideEntryBoost || {})[docname];
    return boost ? score + boost : score;
  },
  objNameMatch: 11,
  objPartialMatch: 6,
  objPrio: { 0: 15, 1: 5, 2: -5 },
  objPrioDefault: 0,
  title: 15,
  partialTitle: 7,
  term: 5,
  partialTerm: 2,
};

// True when a and b differ by one insertion, deletion, substitution or swap of
// neighbouring letters (Damerau-Levenshtein distance 1).
function guideOneEditApart(a, b) {
  if (a === b || Math.abs(a.length - b.length) > 1) return false;
  var i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (a.length === b.length) {
    if (a.slice(i + 1) === b.slice(i + 1)) return true; // substitution
    return a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
  }
  var longer = a.length > b.length ? a : b;
  var shorter = a.length > b.length ? b : a;
  return longer.slice(i + 1) === shorter.slice(i); // insertion or deletion
}

// The correction written in the reader's capitals (the index holds lower case):
// MisingGreenlet → MissingGreenlet. The two words are one edit apart: letters before
// the edit take the case of the typed letter at the same place, letters after it the
// case of the typed letter as far from the end.
function guideTypedCase(typed, correction) {
  var lower = typed.toLowerCase();
  var i = 0;
  while (i < lower.length && lower[i] === correction[i]) i++;
  var shift = typed.length - correction.length;
  return correction
    .split("")
    .map(function (letter, k) {
      var from = k < i ? typed[k] : typed[k + shift] || typed[k] || "";
      return from && from !== from.toLowerCase() ? letter.toUpperCase() : letter;
    })
    .join("");
}

// The index's vocabulary: words of index entries (as written, lower case) and the
// stems of the text and titles.
function guideVocabulary(index) {
  if (index.guideVocabulary) return index.guideVocabulary;
  var entryWords = {};
  var entries = {};
  Object.keys(index.indexentries).forEach(function (entry) {
    entries[entry.toLowerCase()] = index.indexentries[entry];
    splitQuery(entry.toLowerCase()).forEach(function (word) {
      entryWords[word] = true;
    });
  });
  index.guideVocabulary = { entryWords: entryWords, entries: entries };
  return index.guideVocabulary;
}

function guideKnown(index, vocabulary, word, stem) {
  return (
    vocabulary.entryWords.hasOwnProperty(word) ||
    index.terms.hasOwnProperty(stem) ||
    index.titleterms.hasOwnProperty(stem)
  );
}

function guideCorrection(index, vocabulary, word, stem) {
  var found = null;
  Object.keys(vocabulary.entryWords).some(function (known) {
    return guideOneEditApart(word, known) && (found = known);
  });
  if (found) return found;
  var best = 0;
  [index.titleterms, index.terms].forEach(function (terms) {
    Object.keys(terms).forEach(function (known) {
      if (!guideOneEditApart(stem, known)) return;
      var files = terms[known];
      var count = files.length === undefined ? 1 : files.length;
      if (count > best) {
        best = count;
        found = known;
      }
    });
  });
  return found;
}

function guideForgivingQuery(query, index) {
  // Quotes: "…", “…” and ‘…’ search as '…'; an unquoted option value gets quotes.
  query = query.replace(/["\u201c\u201d\u2018\u2019]/g, "'");
  query = query.replace(/\b([A-Za-z_]\w*)=([A-Za-z_]\w*)\b(?!')/g, function (all, key, value) {
    return /^(True|False|None)$/.test(value) ? all : key + "='" + value + "'";
  });
  if (!index) return { query: query, boost: {}, corrected: [] };
  var corrected = [];
  var vocabulary = guideVocabulary(index);
  var stemmer = new Stemmer();
  var words = splitQuery(query);
  words.forEach(function (original) {
    var word = original.toLowerCase();
    if (word.length < 5 || stopwords.has(word)) return;
    var stem = stemmer.stemWord(word);
    if (guideKnown(index, vocabulary, word, stem)) return;
    var correction = guideCorrection(index, vocabulary, word, stem);
    if (!correction) return;
    correction = guideTypedCase(original, correction);
    query = query.split(original).join(correction);
    corrected.push([original, correction]);
  });
  // Words that are index entries of their own lift their main pages (the glossary,
  // which defines every term, only when no other page has the entry).
  var boost = {};
  if (words.length > 1) {
    splitQuery(query.toLowerCase()).forEach(function (word) {
      var found = vocabulary.entries[word];
      if (!found) return;
      var pages = found
        .filter(function (hit) { return hit[2]; })
        .map(function (hit) { return index.docnames[hit[0]]; });
      var explaining = pages.filter(function (name) { return name !== GUIDE_GLOSSARY; });
      (explaining.length ? explaining : pages).forEach(function (name) {
        boost[name] = GUIDE_ENTRY_BOOST;
      });
    });
  }
  return { query: query, boost: boost, corrected: corrected };
}

// Say which words were searched for instead of the ones typed, above the results.
function guideSayCorrections(corrected) {
  var results = document.getElementById("search-results");
  var note = document.getElementById("guide-search-corrected");
  if (note) note.remove();
  if (!results || !corrected.length) return;
  note = document.createElement("p");
  note.id = "guide-search-corrected";
  note.className = "search-corrected";
  note.textContent =
    "Searched for " +
    corrected
      .map(function (pair) { return pair[1] + " (you typed " + pair[0] + ")"; })
      .join(", ") +
    ".";
  results.before(note);
}

// Sphinx puts this file into language_data.js, which loads before searchtools.js
// defines Search: wrap its query once the page's scripts have run, before
// searchtools.js starts the search (its own DOMContentLoaded handler comes later).
function guideInstall() {
  if (typeof Search === "undefined" || Search.guideForgiving) return;
  var originalQuery = Search.query;
  Search.query = function (query) {
    var forgiving = guideForgivingQuery(query, Search._index);
    Search.guideEntryBoost = forgiving.boost;
    guideSayCorrections(forgiving.corrected);
    return originalQuery(forgiving.query);
  };
  var originalHtmlToText = Search.htmlToText;
  Search.htmlToText = function (htmlString, anchor) {
    var page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(".proof, .proof-detail").forEach(function (element) {
      element.remove();
    });
    var text = originalHtmlToText(page.documentElement.outerHTML, anchor);
    return text.replace(/\(\s*\)/g, "").replace(/ {2,}/g, " ");
  };
  Search.guideForgiving = true;
}
if (typeof Search !== "undefined") guideInstall();
else document.addEventListener("DOMContentLoaded", guideInstall);
