"""SHUTDOWN never pretends to have saved: until RDB snapshots exist, an
explicit SAVE fails (unless FORCE) and an implicit one is skipped with a log
line; with a save hook installed, the hook's failure stops the shutdown."""

from typing import Any

from ambry.server.reply import Err


def test_shutdown_uses_the_save_hook(inproc: Any) -> None:
    stopped: list[bool] = []
    saves: list[bool] = []
    inproc.srv.stop = lambda: stopped.append(True)
    inproc.srv.save_hook = lambda: saves.append(True) or "disk full"
    inproc.call("CONFIG", "SET", "save", "3600 1")  # save points: SHUTDOWN saves
    assert inproc.call("SHUTDOWN") == Err("ERR Errors trying to SHUTDOWN. Check logs.")
    assert saves == [True] and stopped == []
    inproc.call("SHUTDOWN", "NOSAVE")
    assert saves == [True] and stopped == [True]
