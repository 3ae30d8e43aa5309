import gc
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from guide_runtime.capture import record_sent, release_failed_io
from snippets.counting_statements import record_statements
from snippets.models import User
from snippets.serialization import (
    LoadedStateRepr,
    PostOut,
    ReprParcel,
    ReprShipment,
    UserOut,
    _get_first_user,
    _log_slow_shipment_safely_to_a_handler,
    _log_slow_shipment_to_a_handler,
    describe_parcels,
    describe_playlist,
    describe_shipment,
    export_user,
    export_user_loaded_state,
    get_user_handler,
    loaded_columns,
    loaded_to_dict,
    log_slow_shipment,
    log_slow_shipment_safely,
    user_response,
    user_response_after_session_closed,
    user_response_lazy,
    user_to_dict,
)
from tests.support import (
    WRAPPED,
    expect_missing_greenlet,
    failed_load_shape,
    never_awaited_warnings,
)

ADA = UserOut(
    id=1,
    name="ada",
    posts=[PostOut(id=1, title="Notes on engines"), PostOut(id=2, title="On sessions")],
)


# --- Point 10: response models ---------------------------------------------------


async def test_validating_an_unloaded_relationship_fails(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with never_awaited_warnings():
        with record_sent(engine) as (log, _), pytest.raises(ValidationError) as raised:
            await user_response_lazy(session)
        release_failed_io(raised.value)
    # pydantic reports the lazy load's failure as a validation error on `posts`.
    [error] = raised.value.errors()
    assert error["type"] == "get_attribute_error"
    assert error["loc"] == ("posts",)
    assert "MissingGreenlet" in error["msg"]
    assert log.count == 1


async def test_validating_after_the_session_closed_fails_detached(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    with record_statements(engine) as log, pytest.raises(ValidationError) as raised:
        await user_response_after_session_closed(session_factory)
    [error] = raised.value.errors()
    assert error["type"] == "get_attribute_error"
    assert "DetachedInstanceError" in error["msg"]
    assert log.count == 1


async def test_eager_loaded_response_sends_two_statements(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        response = await user_response(session)
    assert response == ADA
    assert log.count == 2
    # Only what the model reads was loaded: roles are still unloaded.
    user = await session.get(User, 1)
    assert "roles" in inspect(user).unloaded


async def test_handler_builds_response_inside_session(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    with record_statements(engine) as log:
        response = await get_user_handler(session_factory, user_id=2)
        first = await _get_first_user(session_factory)
    assert response.name == "grace"
    assert [post.title for post in response.posts] == ["Compilers"]
    assert first == ADA
    assert log.count == 4  # two per call
    # The response is plain data: it outlives the session.
    assert first.model_dump()["posts"][1]["title"] == "On sessions"


# --- Point 11: __repr__, logging, to_dict ----------------------------------------


@pytest.mark.seed("serialization:_seed_shipments")
async def test_repr_touching_a_relationship_fails(
    engine: AsyncEngine,
    session: AsyncSession,
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await describe_shipment(session)
    assert "FROM repr_parcel" in failed.attempted
    assert failed.log.count == 1


@contextmanager
def _plain_log_output() -> Iterator[io.StringIO]:
    """What the snippets' logger writes through a plain handler, as in production.

    pytest's own log handlers re-raise formatting errors instead. (Not a fixture:
    set up before the test's call phase, the logger also got pytest's handlers.)
    """
    logger = logging.getLogger("snippets.serialization")
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield output
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


@pytest.mark.seed("serialization:_seed_shipments")
async def test_logging_an_unsafe_repr_loses_the_message_without_raising(
    engine: AsyncEngine,
    session: AsyncSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with (
        _plain_log_output() as output,
        never_awaited_warnings(),
    ):
        with record_sent(engine) as (log, _):
            shipment = await log_slow_shipment(session)
        gc.collect()  # logging dropped the error; its coroutine dies here
    assert isinstance(shipment, ReprShipment)  # nothing was raised to the caller
    assert output.getvalue() == ""  # and the log line is gone
    stderr = capsys.readouterr().err
    assert "--- Logging error ---" in stderr
    assert "MissingGreenlet" in stderr
    assert log.count == 1


@pytest.mark.seed("serialization:_seed_shipments")
async def test_captured_logging_run_reports_the_lost_line(
    session: AsyncSession,
) -> None:
    with never_awaited_warnings() as warned:
        reported = await _log_slow_shipment_to_a_handler(session)
    # logging formats the arguments again for its error report: two failed loads,
    # each leaving a warning where they are wrapped (2.1 on aiosqlite only).
    assert len(warned) == (2 if failed_load_shape() == WRAPPED else 0)
    assert reported["log output"] == ""
    assert reported["stderr, first line"] == "--- Logging error ---"
    assert reported["stderr, last line"] == (
        "Use the traceback above to help find the error."
    )


@pytest.mark.seed("serialization:_seed_shipments")
async def test_loaded_state_repr_sends_nothing(
    engine: AsyncEngine,
    session: AsyncSession,
) -> None:
    with record_statements(engine) as log:
        shown = await describe_parcels(session)
    assert shown == [
        "ReprParcel(id=1, weight_grams=500, shipment_id=1)",
        "ReprParcel(id=2, weight_grams=1200, shipment_id=1)",
    ]
    assert log.count == 1
    assert issubclass(ReprParcel, LoadedStateRepr)
    # Expired columns are unloaded too, and left out rather than reloaded.
    parcel = await session.get(ReprParcel, 1)
    session.expire(parcel, ["weight_grams"])
    with record_statements(engine) as log:
        assert repr(parcel) == "ReprParcel(id=1, shipment_id=1)"
    assert log.count == 0


@pytest.mark.seed("serialization:_seed_shipments")
async def test_dataclass_repr_loads_relationships(
    engine: AsyncEngine,
    session: AsyncSession,
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await describe_playlist(session)
    assert "FROM dataclass_track" in failed.attempted
    assert failed.log.count == 1


async def test_to_dict_touching_a_relationship_fails(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await export_user(session)
    assert "FROM post" in failed.attempted
    assert failed.log.count == 1
    assert user_to_dict.__name__ in export_user.__code__.co_names


async def test_loaded_to_dict_reads_only_loaded_state(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        exported = await export_user_loaded_state(session)
    assert exported == {"id": 1, "name": "ada"}
    assert log.count == 1
    # Once posts are loaded, they are included, one level deep.
    user = await session.get(User, 1)
    await session.refresh(user, ["posts"])
    with record_statements(engine) as log:
        exported = loaded_to_dict(user)
    assert log.count == 0
    assert [post["title"] for post in exported["posts"]] == [
        "Notes on engines",
        "On sessions",
    ]
    assert "roles" not in exported
    assert loaded_columns(user) == {"id": 1, "name": "ada"}


@pytest.mark.seed("serialization:_seed_shipments")
async def test_logging_loaded_columns_writes_the_line(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with _plain_log_output() as output, record_statements(engine) as log:
        await log_slow_shipment_safely(session)
    assert output.getvalue() == "slow shipment: {'id': 1, 'carrier': 'post'}\n"
    assert log.count == 1


@pytest.mark.seed("serialization:_seed_shipments")
async def test_pytest_log_capture_reraises_the_formatting_error(
    engine: AsyncEngine, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    with expect_missing_greenlet(engine), caplog.at_level(logging.WARNING):
        await log_slow_shipment(session)


@pytest.mark.seed("serialization:_seed_shipments")
async def test_captured_safe_logging_run_writes_the_line(
    engine: AsyncEngine,
    session: AsyncSession,
) -> None:
    with record_statements(engine) as log:
        reported = await _log_slow_shipment_safely_to_a_handler(session)
    assert reported == {
        "log output": "slow shipment: {'id': 1, 'carrier': 'post'}\n",
        "stderr, first line": "",
        "stderr, last line": "",
    }
    assert log.count == 1
