"""Every private internal of another library that ftscale relies on, in one place.

Each is used at the version requirements.txt pins (PINNED); tests/unit/test_internals.py runs each
against the installed library and fails, naming the internal, when a pin moves or the internal goes.
One module per library, so that a job's environment needs only the library it reads (the data
environment has no torch, the training one no Snakemake): internals.snakemake, internals.transformers
(with torch), internals.datasets. The libraries are imported inside the functions.

- Snakemake's file persistence: `.snakemake/incomplete/` marks the outputs of unfinished jobs, each
  file named by the urlsafe base64 of the output path, split into '@'-prefixed directories of at most
  255 characters (snakemake.persistence.file.FilePersistence._record_path).
- Snakemake's `snakemake.common.get_function_params`: the signature of every input, params, resources
  and group function, asked again for each job (inspect.signature: 430,000 calls in the paper grid's
  dry run); cached here, since a function's parameters never change.
- The SLURM executor plugin's import-time probe: Snakemake's command line imports every executor
  plugin, and this one runs `scontrol show config` for the help of --slurm-status-command
  (`job_status_query.should_recommend_squeue_status_command`), 10 s where no controller answers;
  `ftscale run` starts Snakemake without it (internals.snakemake.main).
- transformers' `Adafactor._get_options(group, shape)` -> (factored, use_first_moment): which state a
  parameter gets, which the sharded set-up creates itself (train.distributed.init_adafactor_state).
- datasets' `Dataset._fingerprint`: the hash of a loaded dataset's content and transforms, recorded
  with what a data job read (data.hf).
- A causal LM's decoder layers: no public accessor across architectures (Llama's `model.layers`,
  GPT-NeoX's `gpt_neox.layers`, GPT-2's `transformer.h`); found as the one ModuleList of
  `config.num_hidden_layers` modules.
"""

# The versions the internals below were read from (requirements.txt pins the same; a test compares).
PINNED = {
    "snakemake": "9.27.1",
    "snakemake-executor-plugin-slurm": "2.8.0",
    "transformers": "5.23.0",
    "datasets": "5.2.0",
    "torch": "2.13.0",
}
