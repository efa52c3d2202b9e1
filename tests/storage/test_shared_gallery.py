"""The gallery on a real PostgreSQL server: the people memory on both engines, many
writers at once, changes reaching other desktops, a server that goes away and comes
back, encryption (the server sees no embedding), migrations, and ``gallery copy``."""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest

from faceapp.errors import GalleryError
from faceapp.storage.gallery import Gallery
from faceapp.storage.memory import NewSighting

from .gallery_data import DIM, MODEL, PNG, tmpl, unit


def _sighting(person=None, visitor=None, when=1_000.0, embeddings=None, thumbnail=None) -> NewSighting:
    rows = np.stack([unit() for _ in range(2)]) if embeddings is None else embeddings
    return NewSighting(person, visitor, "cam0", when, when + 5, 10, 0.5, 0.9, rows, MODEL, thumbnail=thumbnail)


def test_the_people_memory_behaves_the_same_on_both_engines(gallery: Gallery) -> None:
    gallery.add_person("Ann", [tmpl(thumbnail=PNG)])
    now = time.time()
    result = gallery.record([_sighting("Ann", when=now - 30), _sighting(visitor=-1, when=now - 20),
                             _sighting(visitor=-1, when=now - 10), _sighting(visitor=-2, when=now, thumbnail=PNG)])
    assert len(result.ids) == 4 and len(set(result.visitors.values())) == 2
    first, second = result.visitors[-1], result.visitors[-2]
    assert [v.id for v in gallery.visitors()] == [second, first]  # the most recently seen first
    assert gallery.visitor(first).sightings == 2
    assert gallery.sightings()[0].label == f"Unknown #{second}"
    assert gallery.sighting(result.ids[3]).thumbnail == PNG
    merged = gallery.merge_visitors(second, first)
    assert merged.sightings == 3 and [v.id for v in gallery.visitors()] == [first]
    gallery.assign([result.ids[1]], "Bea", [tmpl()], new_person=True)
    assert {p.name for p in gallery.people()} == {"Ann", "Bea"}
    assert gallery.unassign(result.ids[0]) == "Ann"
    assert gallery.person("Ann").negative_count == 1
    assert gallery.dismiss_visitor(first) == 2
    assert gallery.visitors() == []
    gallery.set_retention_days(0.5)
    assert gallery.retention_days == 0.5
    old = gallery.record([_sighting(when=now - 86400 * 2)], purge=False)
    assert gallery.purge_sightings() == 1 and old.ids[0] not in {s.id for s in gallery.sightings()}
    assert set(gallery.last_seen()) == {"Bea"}
    embeddings, visitors, ids = gallery.unknown_faces(MODEL)
    assert embeddings.shape[1] == DIM and len(embeddings) == len(visitors) == len(ids)
    assert gallery.memory_revision() >= 8


# --------------------------------------------------------------------------- server only
def _writer(url: str, worker: int, count: int, queue) -> None:
    try:
        with Gallery(url) as g:
            for i in range(count):
                g.add_person(f"w{worker}-{i}", [tmpl()])
                g.add_templates(f"w{worker}-{i}", [tmpl()])
        queue.put(None)
    except BaseException as e:  # noqa: BLE001 -- reported to the test
        queue.put(repr(e))


def test_concurrent_writers_from_several_processes_lose_nothing(postgres_url: str) -> None:
    Gallery(postgres_url).close()  # the schema exists before the writers race
    workers, count = 4, 12
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_writer, args=(postgres_url, w, count, queue)) for w in range(workers)]
    for p in processes:
        p.start()
    errors = [queue.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    assert errors == [None] * workers
    with Gallery(postgres_url) as g:
        people = g.people()
        assert len(people) == workers * count
        assert all(p.template_count == 2 for p in people)
        assert len({t.id for t in g.templates()}) == 2 * workers * count
        assert g.revision() == 1 + 2 * workers * count  # the schema's creation, then one per change


def test_a_change_reaches_another_desktop_by_notification(postgres_url: str) -> None:
    with Gallery(postgres_url) as watcher, Gallery(postgres_url) as other:
        assert watcher._listener.listening.wait(10)
        before = watcher.revision()
        other.add_person("Ann", [tmpl()])
        deadline = time.monotonic() + 10
        while watcher.revision() == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watcher.revision() == other.revision() == before + 1
        # The new revision came with the notification: reading it costs no query.
        watcher._pool.close()
        assert watcher.revision() == before + 1
        watcher._pool = None


def test_a_server_that_goes_away_is_retried_and_reported(tmp_path) -> None:
    import pgserver

    folder = tempfile.mkdtemp(prefix="faceapp-pg-down-")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    url = server.get_uri()
    gallery = Gallery(url)
    try:
        gallery.retry_s = 1.0
        gallery.add_person("Ann", [tmpl()])
        revision = gallery.revision()
        server.cleanup()  # the server stops
        deadline = time.monotonic() + 20
        while gallery.connection_problem is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gallery.connection_problem and "connection lost" in gallery.connection_problem
        assert gallery.revision() == revision  # the live view goes on with what it has
        with pytest.raises(GalleryError) as caught:
            gallery.add_person("Bea", [tmpl()])
        assert "\n" not in str(caught.value) and "gallery server" in str(caught.value)
        server = pgserver.get_server(folder, cleanup_mode="stop")  # back again
        gallery.retry_s = 30.0
        gallery.add_person("Bea", [tmpl()])
        assert [p.name for p in gallery.people()] == ["Ann", "Bea"]
        deadline = time.monotonic() + 20
        while gallery.connection_problem is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gallery.connection_problem is None
    finally:
        gallery.close()
        server.cleanup()


def test_an_encrypted_gallery_keeps_its_embeddings_from_the_server(postgres_url: str) -> None:
    import psycopg

    with Gallery(postgres_url) as g:
        g.add_person("Ann", [tmpl(), tmpl()])
        plain = g.matrix(MODEL).embeddings
        assert len(g.nearest_templates(plain[:1], k=1)[0]) == 1
        g.encrypt("correct horse")
        with psycopg.connect(postgres_url) as raw:
            stored = raw.execute("SELECT embedding, vec FROM faceapp.templates").fetchall()
        assert all(vec is None for _, vec in stored)
        assert all(row.astype("<f4").tobytes() not in b"".join(bytes(e) for e, _ in stored) for row in plain)
        with pytest.raises(GalleryError, match="encrypted"):
            g.nearest_templates(plain[:1])
        assert np.allclose(g.matrix(MODEL).embeddings, plain)  # matched here, on the client
    with Gallery(postgres_url, passphrase="correct horse") as g:
        g.decrypt("correct horse")
        assert g.nearest_templates(plain[:1], k=1)[0][0][1] == "Ann"


def test_nearest_templates_uses_the_hnsw_index(postgres_url: str) -> None:
    import psycopg

    with Gallery(postgres_url) as g:
        rows = [tmpl() for _ in range(60)]
        for i in range(0, 60, 3):
            g.add_person(f"p{i}", rows[i : i + 3])
        query = rows[7].embedding[None]
        best = g.nearest_templates(query, k=3)[0]
        assert best[0][1] == "p6" and best[0][2] == pytest.approx(1.0, abs=1e-5)
    with psycopg.connect(postgres_url) as raw:
        raw.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in raw.execute(
            "EXPLAIN SELECT id FROM faceapp.templates ORDER BY vec <=> (SELECT vec FROM faceapp.templates LIMIT 1) LIMIT 5"))
        typmod = raw.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                             "WHERE attrelid = 'faceapp.templates'::regclass AND attname = 'vec'").fetchone()[0]
    assert "templates_vec_hnsw" in plan and typmod == f"vector({DIM})"


def test_an_older_server_gallery_is_migrated_and_a_foreign_schema_refused(postgres_url: str, postgres_server) -> None:
    import psycopg

    from faceapp.storage import pg_schema
    from faceapp.storage.pg_sql import Connection

    with psycopg.connect(postgres_url, autocommit=True) as raw:
        raw.execute("CREATE EXTENSION IF NOT EXISTS vector")
        raw.execute("CREATE SCHEMA faceapp")
        raw.execute("SET search_path TO faceapp, public")
        conn = Connection(raw)
        conn.execute("CREATE TABLE meta (key text PRIMARY KEY, int_value bigint, real_value double precision, "
                     "text_value text, blob_value bytea)")
        conn.execute("INSERT INTO meta(key, int_value) VALUES ('revision', 0)")
        for migration in pg_schema.MIGRATIONS[:3]:
            migration(conn)
        conn.execute("INSERT INTO meta(key, int_value) VALUES ('schema_version', 3)")
        conn.execute("INSERT INTO people(name, created_at) VALUES ('Old', 1.0)")
    with Gallery(postgres_url) as g:
        assert [p.name for p in g.people()] == ["Old"] and g.visitors() == []
    other = postgres_server.new_database()
    try:
        with psycopg.connect(other, autocommit=True) as raw:
            raw.execute("CREATE SCHEMA faceapp")
            raw.execute("CREATE TABLE faceapp.orders (id int)")
        with pytest.raises(GalleryError, match="not a FaceApp gallery"):
            Gallery(other)
    finally:
        postgres_server.drop(other)


def test_an_unreachable_server_is_one_line() -> None:
    with pytest.raises(GalleryError) as caught:
        Gallery("postgresql://nobody@127.0.0.1:1/none", connect_timeout_s=1)
    assert "cannot reach the gallery server" in str(caught.value) and "\n" not in str(caught.value)
    assert "nobody" in str(caught.value)


def test_the_url_password_never_shows(postgres_server) -> None:
    from faceapp.storage.locations import redacted

    assert redacted("postgresql://ann:s3cret@db.example:5433/faces") == "postgresql://ann:***@db.example:5433/faces"
    with pytest.raises(GalleryError) as caught:
        Gallery("postgresql://ann:s3cret@127.0.0.1:1/faces", connect_timeout_s=1)
    assert "s3cret" not in str(caught.value)


# --------------------------------------------------------------------------- copy
def _observable(g: Gallery) -> tuple:
    people, templates = g.snapshot()
    by_id = {p.id: p.name for p in people}
    return (
        [(p.name, p.created_at, p.template_count, p.negative_count, p.threshold) for p in people],
        sorted((by_id[t.person_id], t.embedding.tobytes(), t.quality, t.thumbnail, t.source, t.created_at, t.kind)
               for t in templates),
        sorted((s.person or "", s.source, s.first_seen, s.frames, s.embeddings.tobytes(), s.thumbnail or b"") for s in g.sightings()),
        sorted(sorted(s.first_seen for s in g.sightings(visitor=v.id)) for v in g.visitors()),
        (g.embeddings_only, g.retention_days, g.encrypted),
    )


def test_copy_moves_a_gallery_to_the_server_and_back(tmp_path, postgres_url: str, postgres_server) -> None:
    from faceapp.storage.copy import copy_gallery

    source = Gallery(tmp_path / "a.db")
    source.add_person("Ann", [tmpl(thumbnail=PNG, source="a.jpg"), tmpl()])
    source.add_person("Bea", [tmpl()])
    source.add_negatives("Ann", [tmpl()])
    source.set_threshold("Bea", 0.42)
    source.set_retention_days(7)
    source.record([_sighting("Ann"), _sighting(visitor=-1, when=2000.0), _sighting(visitor=-1, when=3000.0),
                   _sighting(when=4000.0)], purge=False)
    with source, Gallery(postgres_url) as server:
        summary = copy_gallery(source, server)
        assert (summary.people, summary.templates, summary.sightings) == (2, 4, 4)
        assert _observable(server) == _observable(source)
        back = Gallery(tmp_path / "b.db")
        with back:
            copy_gallery(server, back)
            assert _observable(back) == _observable(source)
            with pytest.raises(GalleryError, match="not empty"):
                copy_gallery(source, back)
            assert _observable(back) == _observable(source)


def test_copy_keeps_the_encryption_and_leaves_nothing_half_done(tmp_path, postgres_url: str, monkeypatch) -> None:
    from faceapp.storage.copy import copy_gallery

    source = Gallery(tmp_path / "a.db")
    source.add_person("Ann", [tmpl()])
    source.set_retention_days(3)
    source.encrypt("pw")
    with source, Gallery(postgres_url) as target:
        with pytest.raises(GalleryError, match="passphrase"):
            copy_gallery(source, target)
        assert target.people() == [] and not target.encrypted
        before = (target.retention_days, target.revision())

        def fails(*args):
            raise GalleryError("the disk is full")

        monkeypatch.setattr(type(target), "_import_in", fails)  # after the settings and the key were written
        with pytest.raises(GalleryError, match="disk is full"):
            copy_gallery(source, target, passphrase="pw")
        monkeypatch.undo()
        assert (target.retention_days, target.revision()) == before and not target.encrypted
        assert not Gallery.is_encrypted_file(postgres_url)
        copy_gallery(source, target, passphrase="pw")
        assert target.encrypted and target.retention_days == 3
    with Gallery(postgres_url, passphrase="pw") as reopened:
        assert [p.name for p in reopened.people()] == ["Ann"]


def test_the_cli_works_on_a_server_gallery_and_copies_it(tmp_path, postgres_url: str, fixtures_dir, capfd,
                                                         monkeypatch) -> None:
    from cli_helpers import ok, refused, run_here

    photos = sorted(str(p) for p in (fixtures_dir / "obama").iterdir())[:2]
    ok(run_here(capfd, "--gallery", postgres_url, "enroll", "Obama", *photos))
    assert '"Obama"' in ok(run_here(capfd, "--gallery", postgres_url, "gallery", "list", "--json")).stdout
    copied = tmp_path / "copy.db"
    assert "copied 1 people" in ok(run_here(capfd, "gallery", "copy", postgres_url, str(copied))).stdout
    refused(run_here(capfd, "gallery", "copy", str(copied), postgres_url), "not empty")
    refused(run_here(capfd, "gallery", "copy", str(tmp_path / "none.db"), postgres_url), "no gallery at")
    monkeypatch.setenv("FACEAPP_GALLERY", postgres_url)  # the environment names the server gallery
    named = ok(run_here(capfd, "identify", str(fixtures_dir / "groups" / "obama_and_biden_1.jpg"))).stdout
    assert "Obama" in named
    refused(run_here(capfd, "--gallery", "postgresql://nobody@127.0.0.1:1/none", "gallery", "list"),
            "cannot reach the gallery server")
    monkeypatch.chdir(tmp_path)
    for command in (["gallery", "list"], ["enroll", "Obama", photos[0]]):  # a mistyped scheme makes no file
        refused(run_here(capfd, "--gallery", "postgressql://ann@db/faces", *command), "unsupported gallery URL scheme")
    assert not (tmp_path / "postgressql:").exists()


def test_a_connection_killed_mid_change_changes_nothing_and_the_next_one_works(postgres_url: str, monkeypatch) -> None:
    with Gallery(postgres_url) as g:
        g.add_person("Ann", [tmpl()])
        before = (g.people(), g.revision())
        original = type(g)._insert

        def killed(self, conn, *args):
            original(self, conn, *args)
            conn.raw.execute("SELECT pg_terminate_backend(pg_backend_pid())")

        monkeypatch.setattr(type(g), "_insert", killed)
        with pytest.raises(GalleryError) as caught:
            g.add_person("Bea", [tmpl()])
        assert "lost the connection" in str(caught.value) and "\n" not in str(caught.value)
        monkeypatch.undo()
        assert (g.people(), g.revision()) == before
        g.add_person("Bea", [tmpl()])
        assert [p.name for p in g.people()] == ["Ann", "Bea"]


def test_a_role_that_may_only_read_is_refused_in_one_line(postgres_url: str, postgres_server) -> None:
    import psycopg

    from faceapp.storage.locations import redacted

    with Gallery(postgres_url) as g:
        g.add_person("Ann", [tmpl()])
    with psycopg.connect(postgres_url, autocommit=True) as raw:
        raw.execute("DROP ROLE IF EXISTS faceapp_reader")
        raw.execute("CREATE ROLE faceapp_reader LOGIN")
        raw.execute("GRANT USAGE ON SCHEMA faceapp TO faceapp_reader")
        raw.execute("GRANT SELECT ON ALL TABLES IN SCHEMA faceapp TO faceapp_reader")
    parts = urlsplit(postgres_url)
    reader = urlunsplit((parts.scheme, "faceapp_reader@" + parts.netloc.rpartition("@")[2], parts.path, parts.query, ""))
    try:
        psycopg.connect(reader).close()
    except psycopg.OperationalError:
        postgres_server.admin("DROP ROLE IF EXISTS faceapp_reader")
        pytest.skip("the test server asks the new role for a password")
    try:
        with Gallery(reader) as g:
            assert [p.name for p in g.people()] == ["Ann"]
            with pytest.raises(GalleryError) as caught:
                g.add_person("Bea", [tmpl()])
            assert "permission denied" in str(caught.value) and "\n" not in str(caught.value)
            assert redacted(reader) in str(caught.value)
        with Gallery(postgres_url) as g:
            assert [p.name for p in g.people()] == ["Ann"]
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as raw:
            raw.execute("REVOKE ALL ON ALL TABLES IN SCHEMA faceapp FROM faceapp_reader")
            raw.execute("REVOKE ALL ON SCHEMA faceapp FROM faceapp_reader")
        postgres_server.drop(postgres_url)
        postgres_server.admin("DROP ROLE IF EXISTS faceapp_reader")


def test_odd_notifications_and_a_restored_counter_do_not_blind_a_desktop(postgres_url: str) -> None:
    import psycopg

    with Gallery(postgres_url) as watcher, Gallery(postgres_url) as other:
        assert watcher._listener.listening.wait(10)
        with psycopg.connect(postgres_url, autocommit=True) as raw:
            for payload in ("revision ²", "revision -1", "revision 99999999999999999999999", "nonsense", ""):
                raw.execute("SELECT pg_notify('faceapp_gallery', %s)", (payload,))
            raw.execute("UPDATE faceapp.meta SET int_value = 1 WHERE key = 'revision'")  # a restored backup
        other.add_person("Ann", [tmpl()])
        deadline = time.monotonic() + 10
        while watcher.revision() != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watcher.revision() == other.revision() == 2
        assert watcher._listener.listening.is_set() and watcher.connection_problem is None


def test_waiting_for_another_desktops_writer_blocks_no_reader(postgres_url: str) -> None:
    import threading

    import psycopg

    from faceapp.storage.postgres import LOCK_KEY

    with Gallery(postgres_url) as g:
        g.add_person("Ann", [tmpl()])
        with psycopg.connect(postgres_url, autocommit=True) as other_desktop:
            other_desktop.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            writer = threading.Thread(target=lambda: g.set_retention_days(9))
            writer.start()
            time.sleep(0.3)
            assert [p.name for p in g.people()] == ["Ann"]  # read while the writer waits
            assert writer.is_alive()
            other_desktop.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            writer.join(30)
        assert not writer.is_alive() and g.retention_days == 9


def test_urls_are_checked_and_their_passwords_never_shown(tmp_path, monkeypatch) -> None:
    from faceapp.storage.locations import redacted, scrub

    for url, shown in [
        ("postgresql://ann:s3cret@db.example:5433/faces", "postgresql://ann:***@db.example:5433/faces"),
        ("postgresql://ann@h/db?password=s3cr%23t&sslmode=require", "postgresql://ann@h/db?password=***&sslmode=require"),
        ("postgresql://ann:s3cr#t@x@127.0.0.1:5432/g", "postgresql://ann:***@127.0.0.1:5432/g"),
        ("postgresql://ann:pw@h1:5432,h2:5432/g", "postgresql://ann:***@h1:5432,h2:5432/g"),
        ("postgresql://ann:pw@127.0.0.1:abc/g", "postgresql://ann:***@127.0.0.1:abc/g"),
        ("postgresql://h/db", "postgresql://h/db"),
    ]:
        assert redacted(url) == shown
    assert "s3cr#t@x" not in scrub("failed for ann:s3cr#t@x (s3cr#t@x)", "postgresql://ann:s3cr#t@x@127.0.0.1:5432/g")
    for url in ("postgresql://ann:s3cret@[::1/g", "POSTGRESQL://ann:s3cret@127.0.0.1:1/g", "postgresql://ann:s3cret@127.0.0.1:abc/g"):
        with pytest.raises(GalleryError) as caught:
            Gallery(url, connect_timeout_s=1)
        assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GalleryError, match="unsupported gallery URL scheme 'postgressql'"):
        Gallery("postgressql://ann:pw@127.0.0.1/g")
    assert list(tmp_path.iterdir()) == []  # no file named after the URL
