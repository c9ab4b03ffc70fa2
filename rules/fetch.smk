# Base models of hub families (families.<family>.hub): fetched, not pretrained. Each base checkpoint
# is one job that downloads its model once into the Hugging Face cache at the pinned revision (a
# local directory is used where it is) and writes a small sealed directory at the checkpoint's
# usual path, so finetuning and evaluation find it like a pretrained one (ftscale.train.fetch). A local
# rule: on a cluster it runs on the submitting host, where there is network. A dry run runs no job
# and so never downloads. The family's tokenizer is its base model's own.
FETCH_RUNS = grid.fetch_runs(config, CONDITIONS)


def fetch_source(wildcards):
    return FETCH_RUNS[grid.pretrain_id(wildcards.family, wildcards.model, int(wildcards.tokens))]


def local_files(directory):
    """A local model's files: inputs, so that a changed directory refetches it (and reruns what
    was finetuned from it, or scored with it)."""
    return sorted(str(p) for p in Path(directory).rglob("*") if p.is_file()) if directory else []


def local_model_files(wildcards):
    return local_files(fetch_source(wildcards).directory)


rule fetch_base:
    wildcard_constraints:
        family=HUB_FAMILIES,
    input:
        local_model_files,
    output:
        directory(f"{RESULTS}/pretrain/{{family}}/{{model}}-{{tokens}}tok"),
    params:
        source=lambda wc: fetch_source(wc).params(),
    localrule: True
    log:
        f"{LOGS}/fetch/{{family}}/{{model}}-{{tokens}}tok.log",
    benchmark:
        f"{BENCH}/fetch/{{family}}/{{model}}-{{tokens}}tok.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/fetch_base.py"


def family_base_checkpoint(wildcards):
    """The base checkpoint a hub family's tokenizer comes from: its base model's, at the models' revision."""
    family = wildcards.family
    return pretrain_dir(family, grid.base_model_of(config, family), grid.full_budget(config, family))


rule hub_tokenizer:
    wildcard_constraints:
        family=HUB_FAMILIES,
    input:
        family_base_checkpoint,
    output:
        tokenizer_path(),
    log:
        f"{LOGS}/data/hub_tokenizer_{{family}}.log",
    benchmark:
        f"{BENCH}/data/hub_tokenizer_{{family}}.tsv"
    conda:
        "../envs/train.yaml"    # it reads the base checkpoint's tokenizer through ftscale.train.model (torch)
    script:
        "../scripts/hub_tokenizer.py"


# A learned metric's checkpoint (evaluate.bleurt): fetched like a base model, once per study, into
# a pointer directory (ftscale.train.fetch.fetch_scorer). A local rule, for the network; offline and
# not cached it stops with one line giving the `hf download` command.
rule fetch_scorer:
    wildcard_constraints:
        metric="bleurt",
    input:
        lambda wc: local_files(hub.scorer_source(config["evaluate"][wc.metric]).get("directory")),
    output:
        directory(f"{RESULTS}/scorers/{{metric}}"),
    params:
        source=lambda wc: hub.scorer_source(config["evaluate"][wc.metric]),
    localrule: True
    log:
        f"{LOGS}/fetch/scorer_{{metric}}.log",
    benchmark:
        f"{BENCH}/fetch/scorer_{{metric}}.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/fetch_scorer.py"
