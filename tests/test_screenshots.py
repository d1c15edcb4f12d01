"""tools.chromium finds Chromium ($CHROMIUM, then PATH, then /usr/bin/chromium) and, without one, says so in
one line and tools.screenshots exits 1. No browser is started here."""
import os
import pathlib
import subprocess
import sys

import pytest

from tools import chromium as C
from tools import screenshots as S
from tools.book_pages import ROOT


def fake_executable(folder: pathlib.Path, name: str) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def no_chromium(tmp_path, monkeypatch):
    """A PATH with no browser on it, no $CHROMIUM and no /usr/bin/chromium."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(C, "CHROMIUM_FALLBACK", str(tmp_path / "no" / "chromium"))
    return tmp_path


def test_nothing_is_found_without_a_browser(no_chromium):
    assert C.find_chromium() is None


def test_the_first_browser_on_path_is_taken(no_chromium, monkeypatch):
    bin_dir = no_chromium / "bin"
    fake_executable(bin_dir, "google-chrome")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert C.find_chromium() == str(bin_dir / "google-chrome")
    fake_executable(bin_dir, "chromium-browser")
    assert C.find_chromium() == str(bin_dir / "chromium-browser")


def test_the_fallback_path_is_taken_when_it_is_there(no_chromium, monkeypatch):
    fallback = fake_executable(no_chromium / "usr-bin", "chromium")
    monkeypatch.setattr(C, "CHROMIUM_FALLBACK", str(fallback))
    assert C.find_chromium() == str(fallback)


def test_chromium_variable_wins_and_is_not_second_guessed(no_chromium, monkeypatch):
    chosen = fake_executable(no_chromium / "opt", "chrome")
    fake_executable(no_chromium / "bin", "chromium")
    monkeypatch.setenv("PATH", str(no_chromium / "bin"))
    monkeypatch.setenv("CHROMIUM", str(chosen))
    assert C.find_chromium() == str(chosen)
    monkeypatch.setenv("CHROMIUM", str(no_chromium / "missing"))
    assert C.find_chromium() is None
    assert f"Chromium not found at '{no_chromium / 'missing'}'" in C.chromium_missing()


def test_main_without_chromium_prints_one_line_and_exits_1(no_chromium, capsys):
    assert S.main(["--html", str(no_chromium), "--out", str(no_chromium / "out")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("screenshots: Chromium not found; install it (Debian/Ubuntu: `sudo apt install chromium`) "
                   "or set CHROMIUM=/path/to/chrome\n")


def test_the_command_line_has_no_traceback(no_chromium, monkeypatch):
    # a $CHROMIUM that is not there: the child cannot fall back to a /usr/bin/chromium this machine may have
    monkeypatch.setenv("CHROMIUM", str(no_chromium / "missing"))
    done = subprocess.run([sys.executable, "-m", "tools.screenshots", "--html", str(no_chromium)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [C.chromium_missing()]
    assert "Traceback" not in done.stderr
