"""Upload an export to the Hugging Face Hub: `cse export CHECKPOINT OUT_DIR --push-to-hub REPO`.

The repository is created if needed (`HfApi.create_repo(..., exist_ok=True)`) and the export directory uploaded in one
commit (`HfApi.upload_folder`), its model card already naming the repository in its usage snippets. What can be
checked without the network (the repository id's form, a token) is checked before the export, so that a typo costs
no export; a refusal of the Hub (no such account, no write permission, a token that is not valid) or no network is
one line after it, and the export stays on disk.
"""

from pathlib import Path

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, HTTPError  # HTTPError: httpx's, of every request
from huggingface_hub.utils import validate_repo_id

from cse.errors import InputError, first_line, one_line
from cse.export.target import FILE_LIST_NAME

# cse's own record of what it wrote, for `--overwrite` of a local export: not part of the model.
NOT_UPLOADED = [FILE_LIST_NAME]


def hub_token(repo_id: str, token: str | None) -> str:
    """The token to upload with: `token`, else the one huggingface_hub finds (`HF_TOKEN`, `hf auth login`).

    Raises:
        InputError: when `repo_id` is not `OWNER/NAME`, or no token is found. The owner is required (the Hub would
            take the token's account) because the model card, written before the upload, loads the model by it.
    """
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise InputError(f"--push-to-hub {repo_id}: not a Hub repository id ({first_line(error)})") from None
    if "/" not in repo_id:
        raise InputError(
            f"--push-to-hub {repo_id}: give the owner too, USER/{repo_id} or ORG/{repo_id}: the model card loads the "
            "model by this id"
        )
    token = token or get_token()
    if not token:
        raise InputError(
            f"--push-to-hub {repo_id}: no Hugging Face token; set HF_TOKEN, run `hf auth login`, or pass --token "
            "(a token with write access)"
        )
    return token


def push_to_hub(directory: str | Path, repo_id: str, *, token: str, private: bool, commit_message: str) -> str:
    """Create `repo_id` if it does not exist and upload `directory` to it in one commit; the repository's URL.

    Args:
        directory: the export to upload (all of it but `NOT_UPLOADED`).
        repo_id: `OWNER/NAME`, a user's or an organization's.
        token: a token with write access to `repo_id`.
        private: create the repository private; False leaves it to the Hub's default (public unless the
            organization says otherwise). An existing repository keeps its visibility.
        commit_message: the message of the upload commit.

    Raises:
        InputError: one line naming the repository, what the Hub or the network said, and how to upload the export
            (which stays, its card naming `repo_id`) once the problem is solved.
    """
    api = HfApi()
    try:
        url = api.create_repo(repo_id, token=token, private=True if private else None, exist_ok=True)
        api.upload_folder(
            repo_id=url.repo_id,
            folder_path=directory,
            commit_message=commit_message,
            token=token,
            ignore_patterns=NOT_UPLOADED,
        )
    except (OSError, HTTPError) as error:  # HTTP refusals, no network, offline mode, a file that cannot be read
        reason = one_line(Exception(_reason(error)), limit=200)  # room left for the way out, in the CLI's one line
        raise InputError(
            f"--push-to-hub {repo_id}: {reason}; the export is written: `hf upload {repo_id} {directory}` uploads it"
        ) from None
    return str(url)


def _reason(error: Exception) -> str:
    """What the Hub said, `403 Forbidden: <its message>`, or the error's type and first line (ConnectError,
    OfflineModeIsEnabled, ...)."""
    response = getattr(error, "response", None)
    if isinstance(error, HfHubHTTPError) and error.server_message and response is not None:
        return f"{response.status_code} {response.reason_phrase}: {first_line(Exception(error.server_message))}"
    return f"{type(error).__name__}: {first_line(error)}"
