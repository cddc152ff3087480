"""The embedded PostgreSQL of an install without DATABASE_URL: a real server from the wheel."""

import shutil
import stat
import subprocess
import time

import psycopg
import pytest

from ocrreview import embedded_db


@pytest.fixture
def pgdata(tmp_path):
    pgdata = tmp_path / "var" / "postgres"
    yield pgdata
    embedded_db.stop(pgdata)


def test_a_second_start_takes_over_the_running_server_and_keeps_the_data(pgdata):
    url = embedded_db.start(pgdata)
    first = embedded_db.running_pid(pgdata)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE kept (note text)")
        db.execute("INSERT INTO kept VALUES ('written before')")

    # As after a run that was killed: the server is still up, and a new run starts.
    assert embedded_db.start(pgdata) == url
    assert embedded_db.running_pid(pgdata) == first

    assert embedded_db.stop(pgdata)
    assert embedded_db.running_pid(pgdata) is None
    assert not embedded_db.stop(pgdata)

    with psycopg.connect(embedded_db.start(pgdata)) as db:
        assert db.execute("SELECT note FROM kept").fetchall() == [("written before",)]
    assert embedded_db.running_pid(pgdata) != first


def test_it_listens_on_a_socket_only_this_account_may_use(pgdata):
    """initdb trusts whoever connects: a socket open to every local account (pgserver makes
    it 0777) let any of them in as the superuser."""
    url = embedded_db.start(pgdata)
    assert url.startswith("postgres://postgres@%2F")
    with psycopg.connect(url) as db:
        assert db.execute("SHOW listen_addresses").fetchone() == ("",)
        assert db.execute("SELECT current_database()").fetchone() == ("ocrreview",)
    (socket_file,) = pgdata.glob(".s.PGSQL.*[0-9]")
    assert stat.S_IMODE(socket_file.stat().st_mode) == 0o700
    embedded_db.stop(pgdata)
    embedded_db.start(pgdata)  # kept across starts
    (socket_file,) = pgdata.glob(".s.PGSQL.*[0-9]")
    assert stat.S_IMODE(socket_file.stat().st_mode) == 0o700


@pytest.mark.parametrize("name", ["python", "postgres"])
def test_a_stale_pid_file_naming_another_process_is_not_taken_for_the_server(
    pgdata, tmp_path, name
):
    """After a reboot or a kill -9 of the whole container the pid in postmaster.pid may be
    another program's, even another PostgreSQL's (stood for by a program named postgres,
    started since): the server is started anew, the other process left alone (stop() would
    have sent it SIGINT)."""
    url = embedded_db.start(pgdata)
    stale = (pgdata / "postmaster.pid").read_text().splitlines()
    embedded_db.stop(pgdata)
    time.sleep(embedded_db.PID_START_SLACK_S)  # started after the server, by more than slack
    program = tmp_path / name
    shutil.copy(shutil.which("sleep"), program)
    other = subprocess.Popen([program, "60"])
    try:
        (pgdata / "postmaster.pid").write_text("\n".join([str(other.pid), *stale[1:]]) + "\n")
        assert embedded_db.running_pid(pgdata) is None
        assert not embedded_db.stop(pgdata)
        assert other.poll() is None

        assert embedded_db.start(pgdata) == url
        with psycopg.connect(url) as db:
            assert db.execute("SELECT current_database()").fetchone() == ("ocrreview",)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
