"""`cse eval`: SimCSE's evaluation protocol (Gao et al., 2021, §B) over SentEval's data (Conneau & Kiela, 2018).

STS tasks (`sts_tasks` reads, `sts` scores): cosine similarity of two embeddings against gold scores, Spearman ×100.
Transfer tasks (`transfer_tasks` reads, `transfer` scores): a logistic-regression probe on frozen embeddings
(`logistic_regression`) under SentEval's validation protocols (`probe`), accuracy ×100. `data_dir` finds the files,
`table` prints the paper's tables; the command is `cse.commands.evaluate`.
"""
