"""`cse export RUN OUT --push-to-hub REPO`: through the `cse` entry point up to the Hub's API, which a fake `HfApi`
records (no hub here); refusals of the Hub come from huggingface_hub itself, talking to a local server that answers as
the Hub does, and the network failures are real ones (offline mode, a refused connection)."""

import functools
import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from huggingface_hub import HfApi, RepoUrl, constants

from cse.export import hub

REPO = "someone/korean-sts-model"


class FakeHfApi:
    """Records `create_repo` and `upload_folder` as the Hub would receive them, with the files uploaded at that
    moment (name -> text, for the card)."""

    calls: list[tuple[str, dict]] = []

    def __init__(self, **kwargs) -> None:
        self.calls.append(("HfApi", kwargs))

    def create_repo(self, repo_id: str, **kwargs) -> RepoUrl:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kwargs) -> None:
        folder = Path(kwargs["folder_path"])
        files = [name for name in _files(folder) if name not in (kwargs.get("ignore_patterns") or ())]
        kwargs["card"] = (folder / "README.md").read_text(encoding="utf-8")
        kwargs["uploaded"] = files
        self.calls.append(("upload_folder", kwargs))


def _files(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


@pytest.fixture
def fake_api(monkeypatch) -> type[FakeHfApi]:
    monkeypatch.setattr(FakeHfApi, "calls", [])
    monkeypatch.setattr(hub, "HfApi", FakeHfApi)
    return FakeHfApi


@pytest.fixture
def no_stored_token(monkeypatch, tmp_path) -> None:
    """No token anywhere huggingface_hub looks: environment, the token file of `hf auth login`, OIDC."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-here"))


def _export_args(fitted_run: Path, out: Path, *extra: str) -> list[str]:
    return ["export", str(fitted_run), str(out), *extra]


def test_push_uploads_the_export_with_a_card_that_loads_the_repo(fitted_run, fake_api, run_cse, tmp_path):
    out = tmp_path / "my-model"
    code, stdout, err = run_cse(_export_args(fitted_run, out, "--push-to-hub", REPO, "--private", "--token", "hf_x"))

    assert code == 0, err
    assert stdout.splitlines() == [f"exported: {out}", f"pushed: https://huggingface.co/{REPO}"]
    (_, created), (_, uploaded) = [call for call in fake_api.calls if call[0] != "HfApi"]
    assert created == {"repo_id": REPO, "token": "hf_x", "private": True, "exist_ok": True}
    card = uploaded.pop("card")
    assert uploaded.pop("uploaded") == [name for name in _files(out) if name != ".cse_export.json"]
    assert uploaded == {
        "repo_id": REPO,
        "folder_path": out,
        "commit_message": f"cse export of {next((fitted_run / 'checkpoints').glob('best-step=*.ckpt')).name}",
        "token": "hf_x",
        "ignore_patterns": [".cse_export.json"],  # cse's own file list, not part of the model
    }
    # Every usage snippet and the title name the Hub id, never the local folder.
    assert card.splitlines()[card.splitlines().index("---", 1) + 2] == f"# {REPO}"
    loads = re.findall(r"(?:SentenceTransformer|load_model|from_pretrained)\(([^)]*)\)", card)
    assert len(loads) == 4 and set(loads) == {repr(REPO)}
    assert "my-model" not in card.replace(REPO, "")
    assert (out / "README.md").read_text(encoding="utf-8") == card  # the local export is the uploaded one


def test_push_without_private_or_token_uses_the_hubs_default_and_the_stored_token(
    fitted_run, fake_api, run_cse, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")
    code, _, err = run_cse(_export_args(fitted_run, tmp_path / "out", "--push-to-hub", REPO))

    assert code == 0, err
    (_, created), (_, uploaded) = [call for call in fake_api.calls if call[0] != "HfApi"]
    assert created["private"] is None  # the Hub's default: public unless the organization says otherwise
    assert created["token"] == uploaded["token"] == "hf_from_environment"


def test_export_without_push_names_the_folder_and_calls_no_hub(fitted_run, fake_api, run_cse, tmp_path):
    code, stdout, err = run_cse(_export_args(fitted_run, tmp_path / "local-name"))

    assert code == 0, err
    assert fake_api.calls == [] and "pushed" not in stdout
    assert "SentenceTransformer('local-name')" in (tmp_path / "local-name" / "README.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--push-to-hub", REPO], "no Hugging Face token; set HF_TOKEN, run `hf auth login`, or pass --token"),
        (["--push-to-hub", "not a repo", "--token", "hf_x"], "--push-to-hub not a repo: not a Hub repository id"),
        (["--push-to-hub", "name-only", "--token", "hf_x"], "give the owner too, USER/name-only or ORG/name-only"),
        (["--private"], "--private: only with --push-to-hub REPO"),
        (["--token", "hf_x"], "--token: only with --push-to-hub REPO"),
    ],
)
@pytest.mark.usefixtures("no_stored_token")
def test_refused_before_the_export(args, message, fitted_run, fake_api, run_cse, tmp_path):
    code, stdout, err = run_cse(_export_args(fitted_run, tmp_path / "out", *args))

    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err  # before any export output
    assert fake_api.calls == [] and not (tmp_path / "out").exists()


class _HubAnswers(BaseHTTPRequestHandler):
    """Answers every request as the Hub refuses one: `status` with the Hub's X-Error-Message header."""

    status, message = 403, ""

    def do_POST(self) -> None:
        body = json.dumps({"error": self.message}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Message", self.message)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def local_hub(monkeypatch) -> Iterator[type[_HubAnswers]]:
    """The real `HfApi`, online, with its endpoint a local server that answers as `_HubAnswers` says."""
    answers = type("Answers", (_HubAnswers,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HfApi", functools.partial(HfApi, endpoint=f"http://127.0.0.1:{server.server_port}"))
    yield answers
    server.shutdown()
    server.server_close()
    thread.join()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (
            (403, 'You don\'t have the rights to create a model under the namespace "someone"'),
            '403 Forbidden: You don\'t have the rights to create a model under the namespace "someone"',
        ),
        ((401, "Invalid credentials in Authorization header"), "401 Unauthorized: Invalid credentials in"),
        ("refused", "ConnectError: [Errno 111] Connection refused"),
        ("offline", "OfflineModeIsEnabled: Cannot reach https://huggingface.co/api/repos/create: offline mode"),
    ],
)
def test_hub_and_network_failures_are_one_line_and_keep_the_export(
    failure, said, fitted_run, run_cse, tmp_path, monkeypatch, request
):
    if isinstance(failure, tuple):  # the Hub refuses: no permission on the namespace, a token that is not valid
        answers = request.getfixturevalue("local_hub")
        answers.status, answers.message = failure
    elif failure == "refused":  # no network: nothing listens where the Hub should be
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hub, "HfApi", functools.partial(HfApi, endpoint=f"http://127.0.0.1:{_closed_port()}"))
    else:  # HF_HUB_OFFLINE=1, as the tests run: the real HfApi refuses before any request
        assert constants.HF_HUB_OFFLINE
    out = tmp_path / "out"

    code, stdout, err = run_cse(_export_args(fitted_run, out, "--push-to-hub", REPO, "--token", "hf_x"))

    assert code == 2 and stdout == f"exported: {out}\n"
    assert err.count("error:") == 1, err
    line = err.splitlines()[-1]  # above it, only transformers' progress bar of the export
    assert line.startswith(f"error: --push-to-hub {REPO}: {said}"), line
    assert line.endswith(f"; the export is written: `hf upload {REPO} {out}` uploads it")
    assert (out / "model.safetensors").is_file() and REPO in (out / "README.md").read_text()
