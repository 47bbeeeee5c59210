"""Using a trained model: loading an export, a checkpoint or any Hugging Face encoder, encoding, searching, and the
Python API (`cse.load_model`).
"""
