"""Exporting a trained encoder: the model directory (transformers, sentence-transformers and cse files), its pooling
table, its model card, and where an export may be written.
"""
