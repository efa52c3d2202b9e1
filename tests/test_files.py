"""``faceapp.files``: files written completely or not at all, with the modes a plain
``open()`` would give them (reports, cards and exports are not made private)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from faceapp.errors import FaceAppError
from faceapp.files import AtomicOutput, write_json


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own(tmp_path):
    old = os.umask(0o027)
    try:
        write_json(tmp_path / "new.json", {"name": "Zoë"})
        assert mode_of(tmp_path / "new.json") == 0o640
    finally:
        os.umask(old)
    assert json.loads((tmp_path / "new.json").read_text(encoding="utf-8")) == {"name": "Zoë"}
    assert "Zoë" in (tmp_path / "new.json").read_text(encoding="utf-8")  # not \\u-escaped
    os.chmod(tmp_path / "new.json", 0o604)
    write_json(tmp_path / "new.json", [1, 2])
    assert mode_of(tmp_path / "new.json") == 0o604 and json.loads((tmp_path / "new.json").read_text()) == [1, 2]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "card.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})  # not JSON: nothing is written
    with pytest.raises(RuntimeError), AtomicOutput(path, "w", encoding="utf-8") as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]
    with pytest.raises(FaceAppError, match="is a folder"):
        write_json(tmp_path, {})
