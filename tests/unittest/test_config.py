import os

import pytest

from antenna.app import AntennaApp, build_app
from antenna.configdoc import render
from antenna.libconfig import build_config_manager, runtime_config_lines
from antenna.service import APP_LOAD_ERROR

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_configuration_doc_is_current():
    with open(os.path.join(REPO_ROOT, "docs", "configuration.md")) as fp:
        assert fp.read() == render(), "docs/configuration.md is stale: run `make docs`"


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"CONCURRENT_CRASHMOVERS": "many"}, "CONCURRENT_CRASHMOVERS"),
        ({"CRASHSTORAGE_CLASS": "antenna.nope.Storage"}, "CRASHSTORAGE_CLASS"),
        ({"LOGGING_LEVEL": "LOUD"}, "LOGGING_LEVEL"),
    ],
)
def test_bad_config_stops_startup_with_one_line(tmp_path, capsys, env, needle):
    env = {"CRASHMOVER_SPOOL_DIR": str(tmp_path / "s"), "CRASHSTORAGE_FS_ROOT": str(tmp_path), **env}
    with pytest.raises(SystemExit) as excinfo:
        build_app(build_config_manager(env))
    assert excinfo.value.code == APP_LOAD_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("antenna: configuration error:") and needle in err[0]


def test_env_file_is_read_after_environment(tmp_path):
    env_file = tmp_path / "my.env"
    env_file.write_text("DUMP_ID_PREFIX=xx-\nMAX_PARTS=9\n")
    config = build_config_manager({"ANTENNA_ENV": str(env_file), "MAX_PARTS": "3"})
    assert config("DUMP_ID_PREFIX") == "xx-"
    assert config("MAX_PARTS") == "3"


def test_secrets_are_masked_in_startup_log(tmp_path):
    config = build_config_manager(
        {
            "CRASHMOVER_SPOOL_DIR": str(tmp_path / "s"),
            "CRASHSTORAGE_FS_ROOT": str(tmp_path),
            "SECRET_SENTRY_DSN": "https://0123456789abcdef@sentry.example/1",
            "SECRET_CRASH_ID_REUSE_TOKEN": "token-value-123456",
        }
    )
    app = AntennaApp(config)
    try:
        lines = "\n".join(runtime_config_lines(config, app.components()))
    finally:
        app.crashmover.spool.close()
    assert "0123456789abcdef" not in lines and "token-value-123456" not in lines
    assert "SECRET_SENTRY_DSN=http*****" in lines
    assert "CRASHSTORAGE_FS_ROOT=" in lines
