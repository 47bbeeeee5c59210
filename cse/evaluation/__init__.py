"""`cse eval`: SimCSE's evaluation protocol (Gao et al., 2021, §B) over SentEval's data (Conneau & Kiela, 2018).

STS tasks (`sts_tasks`, `sts`): cosine similarity of two embeddings against gold scores, Spearman ×100.
Transfer tasks (`transfer_tasks`, `transfer`): a logistic-regression probe on frozen embeddings (`probe`,
`logistic_regression`), accuracy ×100. `table` prints the paper's tables and `command` is the CLI.
"""
