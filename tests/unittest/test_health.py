import json


def test_lbheartbeat(collector):
    resp = collector.client.simulate_get("/__lbheartbeat__")
    assert resp.status_code == 200


def test_heartbeat_reports_each_component(collector):
    resp = collector.client.simulate_get("/__heartbeat__")
    assert resp.status_code == 200
    body = resp.json
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"crashstorage", "crashpublish", "crashmover"}


def test_heartbeat_500_when_storage_unwritable(collector):
    collector.app.crashstorage.root = "/proc/definitely-not-writable"
    resp = collector.client.simulate_get("/__heartbeat__")
    assert resp.status_code == 500
    assert resp.json["checks"]["crashstorage"]["status"] == "error"


def test_version_reads_version_json(make_collector, tmp_path):
    (tmp_path / "version.json").write_text(json.dumps({"commit": "abc", "version": "1.0"}))
    collector = make_collector(BASEDIR=str(tmp_path))
    assert collector.client.simulate_get("/__version__").json == {"commit": "abc", "version": "1.0"}


def test_broken_is_disabled_unless_configured(make_collector):
    assert make_collector().client.simulate_get("/__broken__").status_code == 404
    enabled = make_collector(BROKEN_ENABLED="true")
    assert enabled.client.simulate_get("/__broken__").status_code == 500
