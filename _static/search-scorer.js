// The site's search tuning (html_search_scorer; Sphinx loads it on the search page).
// Ranking: index entries score 100 on an exact match. The glossary defines its terms
// with index entries too; a page that has its own main entry for a term explains it
// at length, so on a tie the glossary comes second.
var Scorer = {
  score: function (result) {
    var docname = result[0];
    var score = result[4];
    var kind = result[6];
    if (kind === "index" && docname === "guides/glossary") return score - 1;
    return score;
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

// Readers paste lazy="raise" as often as lazy='raise': index entries use single
// quotes, so search for both spellings alike.
if (typeof Search !== "undefined" && !Search.guideQuotesNormalised) {
  var guideOriginalQuery = Search.query;
  Search.query = function (query) {
    return guideOriginalQuery(query.replace(/["\u201c\u201d]/g, "'"));
  };
  Search.guideQuotesNormalised = true;
}
