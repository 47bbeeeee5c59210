"""One module per `cse` command (see `cse.cli`), each with `run(argv)`; those with their own options also have
`build_parser()` (`fit`, `validate` and `test` are a LightningCLI, and `quickstart` takes fit's options).
"""
