"""cse: sentence embeddings with contrastive learning (SimCSE) on PyTorch Lightning."""
