"""SimCSE's auxiliary MLM loss on every encoder family: the family's own masked-LM head, whatever its layout (one
module, several, or DeBERTa's head that decodes with the word embeddings), and one line where a checkpoint has none."""

import pytest
import torch
from sentences import TRIPLETS, tokenized_rows
from tiny_families import FAMILIES
from trainerless import without_trainer
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

from cse.data.collate import ExampleCollator
from cse.errors import InputError
from cse.models.simcse import SimCSE


@pytest.mark.parametrize("family", FAMILIES)
def test_mlm_loss_is_the_familys_own_masked_lm_loss(family, family_model_dir):
    model_dir = family_model_dir(family)
    module = without_trainer(SimCSE(str(model_dir), pooler_type="avg", do_mlm=True, mlm_weight=0.1).eval())
    without_mlm = without_trainer(SimCSE(str(model_dir), pooler_type="avg").eval())
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    batch = ExampleCollator(tokenizer, mlm_probability=0.5)(tokenized_rows(tokenizer, TRIPLETS))
    contrastive = without_mlm.training_step({k: v for k, v in batch.items() if not k.startswith("mlm")}, 0)
    # Independent reference: transformers' own *ForMaskedLM loss on the masked triplets.
    reference = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        mlm = reference(
            input_ids=batch["mlm_input_ids"].flatten(0, 1),
            attention_mask=batch["attention_mask"].flatten(0, 1),
            labels=batch["mlm_labels"].flatten(0, 1),
        ).loss
    torch.testing.assert_close(module.training_step(batch, 0), contrastive + 0.1 * mlm, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_mlm_decoder_is_an_untied_copy_of_the_word_embeddings(family, family_model_dir):
    """As SimCSE's BertForCL: the head's decoder starts as the pretrained one (tied to the word embeddings in these
    checkpoints) and trains apart from the encoder's embeddings."""
    module = SimCSE(str(family_model_dir(family)), pooler_type="avg", do_mlm=True)
    embeddings = module.encoder.backbone.get_input_embeddings().weight
    decoders = [parameter for parameter in module.mlm_head.parameters() if parameter.shape == embeddings.shape]
    assert len(decoders) == 1
    decoder = decoders[0]
    assert torch.equal(decoder, embeddings) and decoder.data_ptr() != embeddings.data_ptr()
    module.mlm_head(torch.randn(2, 3, embeddings.size(1))).sum().backward()
    assert decoder.grad is not None and embeddings.grad is None


@pytest.mark.parametrize("family", FAMILIES)
def test_mlm_without_a_trained_head_is_one_line(family, family_model_dir, tmp_path):
    """The encoder alone, saved as `AutoModel` (as a sentence-transformers model is): no head to train with."""
    AutoModel.from_pretrained(family_model_dir(family)).save_pretrained(tmp_path)
    with pytest.raises(
        InputError, match=r"^model.do_mlm: '.*' has no trained masked-LM head \(.* is missing\)"
    ) as error:
        SimCSE(str(tmp_path), do_mlm=True, pooler_type="avg")
    assert "\n" not in str(error.value)
