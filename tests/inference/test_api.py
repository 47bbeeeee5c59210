import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from cse import EmbeddingModel, SearchHit, load_model
from cse.errors import InputError
from cse.export.directory import write_model_directory
from cse.inference.arguments import torch_device
from cse.models.encoder import SentenceEncoder

SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl", "a boy is on the dog", "the woman"]


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory):
    """An export of a `cls` encoder whose every weight (the MLP included) differs from the base model."""
    torch.manual_seed(0)
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), "cls")
    with torch.no_grad():
        for param in encoder.parameters():
            param.add_(0.05 * torch.randn_like(param))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out_dir = write_model_directory(encoder, tokenizer, tmp_path_factory.mktemp("api") / "model")
    return out_dir, encoder.eval(), tokenizer


def _one_by_one(encoder, tokenizer, sentences) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([encoder(**tokenizer([sentence], return_tensors="pt")) for sentence in sentences])


def test_encode_gives_the_trained_encoders_embeddings(exported):
    out_dir, encoder, tokenizer = exported
    model = load_model(out_dir, device="cpu")
    assert isinstance(model, EmbeddingModel) and model.dimension == 32
    expected = _one_by_one(encoder, tokenizer, SENTENCES)
    embeddings = model.encode(SENTENCES, batch_size=2)
    assert isinstance(embeddings, np.ndarray) and embeddings.dtype == np.float32 and embeddings.shape == (5, 32)
    torch.testing.assert_close(torch.from_numpy(embeddings), expected, atol=1e-5, rtol=0)
    as_tensor = model.encode(SENTENCES, convert_to="torch", progress=True)
    assert isinstance(as_tensor, torch.Tensor)
    torch.testing.assert_close(as_tensor, expected, atol=1e-5, rtol=0)
    assert model.encode(SENTENCES[0]).shape == (32,)
    assert model.encode([]).shape == (0, 32)
    normalized = model.encode(SENTENCES, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(normalized, embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True), atol=1e-6)


def test_encode_in_chunks_matches_one_by_one(exported, monkeypatch):
    out_dir, encoder, tokenizer = exported
    monkeypatch.setattr("cse.inference.api.CHUNK_BATCHES", 2)  # 5 sentences at batch 1: chunks of 2, 2, 1
    embeddings = load_model(out_dir, device="cpu").encode(SENTENCES[::-1], batch_size=1, convert_to="torch")
    torch.testing.assert_close(embeddings, _one_by_one(encoder, tokenizer, SENTENCES[::-1]), atol=1e-5, rtol=0)


def test_similarity_is_the_cosine_of_the_embeddings(exported):
    model = load_model(exported[0], device="cpu")
    embeddings = model.encode(SENTENCES)
    expected = [[float(u @ v / np.linalg.norm(u) / np.linalg.norm(v)) for v in embeddings[:2]] for u in embeddings]
    np.testing.assert_allclose(model.similarity(SENTENCES, SENTENCES[:2]), expected, atol=1e-5)
    assert model.similarity("a girl", SENTENCES).shape == (1, 5)


def test_search_finds_the_nearest_sentences(exported):
    model = load_model(exported[0], device="cpu")
    model.build_index(SENTENCES, backend="torch")
    queries = ["a dog in the park", "girl"]
    results = model.search(queries, top_k=3)
    corpus, query_embeddings = model.encode(SENTENCES), model.encode(queries)
    for query, hits in zip(query_embeddings, results, strict=True):
        scores = [float(query @ row / np.linalg.norm(query) / np.linalg.norm(row)) for row in corpus]
        best = sorted(range(len(SENTENCES)), key=lambda index: -scores[index])[:3]
        assert [hit.corpus_id for hit in hits] == best
        assert [hit.sentence for hit in hits] == [SENTENCES[index] for index in best]
        assert [hit.score for hit in hits] == pytest.approx([scores[index] for index in best], abs=1e-5)
        assert all(isinstance(hit, SearchHit) for hit in hits)
    assert model.search([], top_k=3) == []  # as encode([]) gives no rows
    # Between the first query's second and third hits: searched alone, the query pads otherwise, so its scores can
    # differ from the batch's in the last bits (as they did with ATEN_CPU_CAPABILITY=default).
    second, third = results[0][1].score, results[0][2].score
    assert second - third > 1e-4
    assert len(model.search(queries[0], top_k=5, threshold=(second + third) / 2)[0]) == 2


def test_a_plain_model_needs_a_pooler(tiny_model_dir):
    model = load_model(tiny_model_dir, pooler_type="avg", device="cpu")
    assert model.encoder.pooler_type == "avg"
    with pytest.raises(InputError, match="say how to pool"):
        load_model(tiny_model_dir)


def test_bad_inputs_are_input_errors(exported):
    model = load_model(exported[0], device="cpu")
    with pytest.raises(InputError, match="no corpus indexed; call build_index"):
        model.search("a dog")
    with pytest.raises(InputError, match=r"^sentences\[1\]: expected a string, got int 3$"):
        model.encode(["a", 3])
    with pytest.raises(InputError, match=r"^sentences: expected a string or a list of strings, got ndarray$"):
        model.encode(np.array(["a", "b"]))
    with pytest.raises(InputError, match=r"^b\[0\]: expected a string, got NoneType None$"):
        model.similarity("a", [None])
    with pytest.raises(InputError, match="convert_to 'list'"):
        model.encode("a", convert_to="list")
    with pytest.raises(InputError, match="batch_size: must be at least 1"):
        model.encode("a", batch_size=0)
    with pytest.raises(InputError, match="corpus: no sentences to index"):
        model.build_index([])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda model: model.similarity("a", "b", convert_to="list"), "convert_to 'list': choose numpy or torch"),
        (
            lambda model: model.build_index("a man is playing a guitar.\nthe dog is in the park\n"),
            "corpus: expected a list of sentences, got one string (index one sentence as [sentence])",
        ),
        (lambda model: model.encode("a", batch_size=1.5), "batch_size: must be a whole number >= 1, got 1.5"),
        (lambda model: model.encode("a", batch_size=None), "batch_size: must be a whole number >= 1, got None"),
        (lambda model: model.encode(["a", "b"], batch_size=True), "batch_size: must be a whole number >= 1, got True"),
        (lambda model: model.encode("a", batch_size=-2), "batch_size: must be at least 1, got -2"),
        (lambda model: model.search("a", top_k=2.5), "top_k: must be a whole number >= 1, got 2.5"),
        (lambda model: model.search("a", top_k=None), "top_k: must be a whole number >= 1, got None"),
        (lambda model: model.search("a", top_k=True), "top_k: must be a whole number >= 1, got True"),
        (lambda model: model.search("a", top_k=-1), "top_k: must be at least 1, got -1"),
        (lambda model: model.search("a", threshold=2), "threshold: a cosine similarity in [-1, 1], got 2"),
        (
            lambda model: model.search("a", threshold="0.5"),
            "threshold: a cosine similarity in [-1, 1], got '0.5'",
        ),
        (
            lambda model: model.search("a", threshold=float("nan")),
            "threshold: a cosine similarity in [-1, 1], got nan",
        ),
        (
            lambda model: model.encode("a", device="bogus"),
            "device 'bogus': not a torch device (cpu, cuda, cuda:1, mps, ...)",
        ),
        (lambda model: model.encode("a", device=1.5), "device 1.5: not a torch device (cpu, cuda, cuda:1, mps, ...)"),
        (
            lambda model: model.encode("a", device="cuda"),
            "device 'cuda': CUDA is not available on this machine (use cpu)",
        ),
        (lambda model: model.encode("a", device=0), "device 0: CUDA is not available on this machine (use cpu)"),
    ],
)
def test_a_bad_argument_is_one_line_naming_it(exported, call, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a machine with a GPU
    model = load_model(exported[0], device="cpu")
    model.build_index(SENTENCES)
    with pytest.raises(InputError) as error:
        call(model)
    assert str(error.value) == message


def test_a_device_this_machine_lacks_is_refused_before_loading(exported, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("cse.inference.api.load_encoder", lambda *args: pytest.fail("loaded the model"))
    with pytest.raises(InputError, match="^device 'cuda:1': CUDA is not available on this machine"):
        load_model(exported[0], device="cuda:1")


def test_a_run_folder_is_refused_with_where_its_model_is(exported, tmp_path):
    run_dir, checkpoints = tmp_path / "version_0", tmp_path / "version_0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "best-step=2.ckpt").write_bytes(b"")
    (checkpoints / "last.ckpt").write_bytes(b"")
    with pytest.raises(InputError) as error:
        load_model(checkpoints, device="cpu")
    assert str(error.value).endswith(
        f"; it holds cse checkpoints: give one, such as {checkpoints / 'best-step=2.ckpt'}"
    )
    with pytest.raises(InputError) as error:
        load_model(run_dir, device="cpu")
    assert str(error.value).endswith(
        f"; it holds cse checkpoints: give one, such as {checkpoints / 'best-step=2.ckpt'}"
    )
    shutil.copytree(exported[0], run_dir / "best_model")
    with pytest.raises(InputError) as error:
        load_model(run_dir, device="cpu")
    assert str(error.value) == (
        f"model '{run_dir}': directory has no config.json (not a Hugging Face model); it is a cse run folder: its "
        f"exported model is {run_dir / 'best_model'}"
    )
    torch.testing.assert_close(  # and that folder loads
        load_model(run_dir / "best_model", device="cpu").encode(SENTENCES, convert_to="torch"),
        load_model(exported[0], device="cpu").encode(SENTENCES, convert_to="torch"),
    )


@pytest.mark.parametrize("pooler_type", ["cls", "avg"])
def test_a_model_saved_in_bfloat16_embeds_as_transformers_loads_it(tiny_bf16_model_dir, pooler_type):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bf16_model_dir)
    backbone = AutoModel.from_pretrained(tiny_bf16_model_dir).eval()  # bfloat16, as sentence-transformers loads it
    assert backbone.dtype == torch.bfloat16
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        output = backbone(**batch)
    mask = batch["attention_mask"].unsqueeze(-1)  # (N, L, 1)
    mean = (output.last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1)
    expected = (output.pooler_output if pooler_type == "cls" else mean).float()
    embeddings = load_model(tiny_bf16_model_dir, pooler_type, device="cpu").encode(SENTENCES, convert_to="torch")
    torch.testing.assert_close(embeddings, expected, atol=0, rtol=0)  # computed in bfloat16 alike


def test_a_path_under_the_home_folder_loads(exported, fitted_run, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(exported[0], tmp_path / "models" / "mine")
    checkpoint = next((fitted_run / "checkpoints").glob("best-step=*.ckpt"))
    shutil.copy(checkpoint, tmp_path / "best.ckpt")
    for home_path, path in [("~/models/mine", exported[0]), ("~/best.ckpt", checkpoint)]:
        torch.testing.assert_close(
            load_model(home_path, device="cpu").encode(SENTENCES, convert_to="torch"),
            load_model(path, device="cpu").encode(SENTENCES, convert_to="torch"),
            atol=0,
            rtol=0,
        )


def test_truncate_dim_keeps_the_first_dimensions_then_normalizes(exported):
    out_dir, encoder, tokenizer = exported
    full = _one_by_one(encoder, tokenizer, SENTENCES)  # (5, 32)
    model = load_model(out_dir, device="cpu", truncate_dim=8)
    assert model.dimension == 8 and model.hidden_size == 32
    embeddings = model.encode(SENTENCES, convert_to="torch")
    torch.testing.assert_close(embeddings, full[:, :8], atol=1e-5, rtol=0)
    unit = full[:, :8] / full[:, :8].norm(dim=1, keepdim=True)  # normalized after truncation
    torch.testing.assert_close(model.encode(SENTENCES, normalize=True, convert_to="torch"), unit, atol=1e-5, rtol=0)
    assert model.encode([]).shape == (0, 8) and model.encode(SENTENCES[0]).shape == (8,)
    # One call may take another truncation; the model's stays.
    torch.testing.assert_close(
        model.encode(SENTENCES, truncate_dim=4, convert_to="torch"), full[:, :4], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(model.encode(SENTENCES, truncate_dim=32, convert_to="torch"), full, atol=1e-5, rtol=0)
    np.testing.assert_allclose(model.similarity(SENTENCES[:2], SENTENCES), (unit[:2] @ unit.T).numpy(), atol=1e-5)
    model.build_index(SENTENCES)
    hits = model.search(SENTENCES[1], top_k=1)[0]
    assert hits[0].corpus_id == 1 and hits[0].score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("truncate_dim", "message"),
    [
        (0, "truncate_dim: must be a whole number >= 1 (or None: no truncation), got 0"),
        (2.5, "truncate_dim: must be a whole number >= 1 (or None: no truncation), got 2.5"),
        (True, "truncate_dim: must be a whole number >= 1 (or None: no truncation), got True"),
        (33, "truncate_dim: 33 is larger than the model's 32-dimensional embedding"),
    ],
)
def test_a_truncate_dim_outside_the_embedding_is_one_line(exported, truncate_dim, message):
    with pytest.raises(InputError) as error:
        load_model(exported[0], device="cpu", truncate_dim=truncate_dim)
    assert str(error.value) == message
    with pytest.raises(InputError) as error:
        load_model(exported[0], device="cpu").encode(SENTENCES, truncate_dim=truncate_dim)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"), [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_without_a_device_cuda_is_chosen_then_apples_mps_then_the_cpu(cuda, mps, expected, monkeypatch):
    """As sentence-transformers picks its device: a Mac's GPU (MPS) encodes rather than its CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert torch_device(None) == torch.device(expected)
