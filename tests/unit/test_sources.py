"""The data sources (synthetic, hf, local) and their shared helpers (ftscale.data.common), on data built here.

No network: an autouse fixture puts `datasets` and the Hub client in offline mode and gives
`datasets` a cache under tmp_path. Hub-only features that cannot be exercised offline (revision,
gated datasets) are not tested; target_config is tested on a local dataset directory whose
README.md defines one config per language, as Flores+ does on the Hub.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftscale.data import common, sources
from ftscale.data.common import DataError
from ftscale.data.sources import get_source

TRANSLATION = {"type": "translation", "source_lang": "en", "target_lang": "de"}
SUMMARIZATION = {"type": "summarization", "languages": ["en", "de"]}
ROWS = [{"src": f"hello {i}", "tgt": f"hallo {i}", "language": "en" if i % 2 else "fr"} for i in range(4)]


@pytest.fixture(autouse=True)
def offline_datasets(tmp_path, monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # both libraries read those variables at import, so their constants are set as well
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    datasets.disable_progress_bars()


# --- fixture builders -------------------------------------------------------------------------


def save_dict(path, **splits):
    """A DatasetDict of {split: {column: values}} written with save_to_disk; its directory."""
    import datasets

    datasets.DatasetDict({name: datasets.Dataset.from_dict(cols) for name, cols in splits.items()}).save_to_disk(
        str(path)
    )
    return str(path)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def write_table(path, rows, fmt):
    """rows as jsonl, parquet, csv or tsv."""
    if fmt == "jsonl":
        return write_jsonl(path, rows)
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
        return str(path)
    sep = "," if fmt == "csv" else "\t"
    path.write_text("\n".join([sep.join(rows[0])] + [sep.join(r.values()) for r in rows]) + "\n", encoding="utf-8")
    return str(path)


def hf_source(seed=0, **options):
    return get_source("hf", seed, {"hf": options})


def local_source(seed=0, **options):
    return get_source("local", seed, {"local": options})


def task_opts(task_name="t", **splits):
    return {"tasks": {task_name: splits}}


def one_line_error(call, *args):
    """The message of the DataError `call(*args)` raises, checked to be one line."""
    with pytest.raises(DataError) as caught:
        call(*args)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


# --- common.py --------------------------------------------------------------------------------


def test_get_source_needs_its_options_and_a_known_name():
    assert one_line_error(get_source, "hf", 0, {}).startswith("data.hf: missing")
    assert one_line_error(get_source, "local", 0, {"hf": {"tasks": {}}}).startswith("data.local: missing")
    assert "unknown source 'nope'" in one_line_error(get_source, "nope", 0, {})
    assert type(get_source("local", 0, {"local": {"tasks": {}}})).__name__ == "LocalSource"


def test_synthetic_source_adds_the_summarization_prefix_as_the_others_do():
    task = {"type": "summarization", "languages": ["de", "fr"]}
    default = get_source("synthetic", 0).task_records("s", task, "dev", 2)
    documents = [
        r["source"]
        for r in get_source("synthetic", 0, {"synthetic": {"summarization_prefix": ""}}).task_records(
            "s", task, "dev", 2
        )
    ]
    custom = get_source("synthetic", 0, {"synthetic": {"summarization_prefix": "[{lang}] "}}).task_records(
        "s", task, "dev", 2
    )
    assert [r["source"] for r in default] == [
        "Summarize the following document in German: " + documents[0],
        "Summarize the following document in French: " + documents[1],
    ]
    assert [r["source"] for r in custom] == ["[de] " + documents[0], "[fr] " + documents[1]]
    assert [r["target"] for r in custom] == [r["target"] for r in default]


def test_zero_shot_records_translate_from_the_language_into_the_tasks_target():
    synthetic = get_source("synthetic", 0)
    records = synthetic.zero_shot_records("t", "fr", {"type": "translation", "target_lang": "de"}, 3)
    direction = common.zero_shot_direction({"target_lang": "de", "source_lang": "en"}, "fr")
    assert direction == {"type": "translation", "source_lang": "fr", "target_lang": "de"}
    assert records == synthetic.task_records("t_zero_shot_fr", direction, "test", 3)  # the toy's seeds, as before
    assert {r["lang"] for r in records} == {"fr"}


def test_choose_keeps_all_a_seeded_sorted_subset_or_refuses_a_short_train_split():
    assert common.choose(5, 10, 1, "dev", "x") is None
    picked = common.choose(100, 10, 1, "train", "x")
    assert picked == common.choose(100, 10, 1, "train", "x") == sorted(set(picked)) and len(picked) == 10
    assert picked != common.choose(100, 10, 2, "train", "x")
    assert "x: has 3 rows, fewer than the 5" in one_line_error(common.choose, 3, 5, 1, "train", "x")


def test_interleave_alternates_languages_and_split_offsets_separate_val_from_train():
    assert list(common.interleave([["a1", "a2", "a3"], ["b1"]])) == ["a1", "b1", "a2", "a3"]
    # (skip, take): val the first lines, train the lines after them
    assert common.pretrain_split_offsets(100, 0.02) == {"train": (2, 100), "val": (0, 2)}
    assert common.pretrain_split_offsets(10, 0.02) == {"train": (1, 10), "val": (0, 1)}  # at least one
    assert common.pretrain_split_offsets(100, 0.1) == {"train": (10, 100), "val": (0, 10)}  # data.pretrain_val_share


def test_finish_records_adds_default_language_and_summarization_prefix():
    done = common.finish_records([{"source": "a", "target": "b", "lang": ""}], TRANSLATION, {}, "w")
    assert done == [{"source": "a", "target": "b", "lang": "en"}]
    done = common.finish_records([{"source": "Text.", "target": "T", "lang": "de"}], SUMMARIZATION, {}, "w")
    assert done[0]["source"] == "Summarize the following document in German: Text."
    custom = common.finish_records(
        [{"source": "x", "target": "y", "lang": "fr"}], SUMMARIZATION, {"summarization_prefix": "<{lang}> "}, "w"
    )
    assert custom[0]["source"] == "<fr> x"
    assert "has no language" in one_line_error(
        common.finish_records, [{"source": "x", "target": "y", "lang": ""}], SUMMARIZATION, {}, "w"
    )


def test_write_outputs_renames_files_into_place_with_a_manifest(tmp_path):
    outputs = {"train": (tmp_path / "train.jsonl", [{"a": 1}, {"a": 2}]), "dev": (tmp_path / "dev.jsonl", [{"a": 3}])}
    manifest = sources.write_outputs(outputs, sources.write_jsonl, tmp_path / "manifest.json", lambda: {"source": "x"})
    assert common.read_jsonl(tmp_path / "train.jsonl") == [{"a": 1}, {"a": 2}]
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == manifest and on_disk["source"] == "x"
    digest = common.sha256(tmp_path / "train.jsonl")
    assert on_disk["files"]["train"] == {"path": "train.jsonl", "rows": 2, "sha256": digest}
    assert on_disk["files"]["dev"]["rows"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.jsonl", "manifest.json", "train.jsonl"]


def test_write_outputs_leaves_no_complete_looking_file_when_the_writer_fails(tmp_path):
    def writer(content, path):
        path.write_text("partial\n")
        if content == "boom":
            raise OSError("disk full")

    outputs = {"train": (tmp_path / "train.txt", ["a"]), "dev": (tmp_path / "dev.txt", "boom")}
    with pytest.raises(OSError):
        sources.write_outputs(outputs, writer, tmp_path / "manifest.json", dict)
    assert not any((tmp_path / name).exists() for name in ("train.txt", "dev.txt", "manifest.json"))
    assert all(p.name.startswith(".") and ".tmp-" in p.name for p in tmp_path.iterdir())


# --- hf.py ------------------------------------------------------------------------------------


def wmt_like(tmp_path):
    pairs = lambda n, tag: [{"en": f"{tag} en {i}", "de": f"{tag} de {i}"} for i in range(n)]  # noqa: E731
    return save_dict(tmp_path / "wmt", train={"translation": pairs(6, "tr")}, test={"translation": pairs(2, "te")})


def wmt_spec(path, split, **extra):
    return {
        "dataset": path,
        "split": split,
        "columns": {"source": "translation.en", "target": "translation.de"},
        **extra,
    }


def test_hf_saved_dataset_with_nested_columns(tmp_path):
    path = wmt_like(tmp_path)
    source = hf_source(**task_opts(test=wmt_spec(path, "test")))
    assert source.task_records("t", TRANSLATION, "test", 10) == [
        {"source": "te en 0", "target": "te de 0", "lang": "en"},
        {"source": "te en 1", "target": "te de 1", "lang": "en"},
    ]
    assert source.manifest()["datasets"][0] | {"fingerprint": None} == {
        "dataset": path,
        "config": None,
        "split": "test",
        "revision": None,
        "target_config": None,
        "fingerprint": None,
        "rows_available": 2,
        "rows_used": 2,
    }


def test_hf_train_selection_is_seeded(tmp_path):
    spec = wmt_spec(wmt_like(tmp_path), "train")
    picked = [hf_source(seed, **task_opts(train=spec)).task_records("t", TRANSLATION, "train", 3) for seed in (0, 0, 1)]
    assert picked[0] == picked[1] != picked[2] and len(picked[0]) == 3
    assert [r["source"] for r in picked[0]] == sorted(r["source"] for r in picked[0])  # original order


def test_hf_lang_from_a_column_or_fixed(tmp_path):
    path = save_dict(tmp_path / "d", test={"source": ["a", "b"], "target": ["x", "y"], "language": ["fr", "tr"]})
    by_column = hf_source(**task_opts(test={"dataset": path, "split": "test", "columns": {"lang": "language"}}))
    assert [r["lang"] for r in by_column.task_records("t", TRANSLATION, "test", 5)] == ["fr", "tr"]
    fixed = hf_source(**task_opts(test={"dataset": path, "split": "test", "lang": "pl"}))
    assert [r["lang"] for r in fixed.task_records("t", TRANSLATION, "test", 5)] == ["pl", "pl"]


def test_hf_empty_lang_cell_falls_back_to_the_specs_lang(tmp_path):
    path = save_dict(tmp_path / "d", test={"source": ["a", "b"], "target": ["x", "y"], "language": ["fr", ""]})
    spec = {"dataset": path, "split": "test", "columns": {"lang": "language"}, "lang": "pl"}
    assert [r["lang"] for r in hf_source(**task_opts(test=spec)).task_records("t", TRANSLATION, "test", 5)] == [
        "fr",
        "pl",
    ]


def test_hf_saved_dataset_split_slices(tmp_path):
    spec = wmt_spec(wmt_like(tmp_path), "train[1:3]")
    records = hf_source(**task_opts(test=spec)).task_records("t", TRANSLATION, "test", 10)
    assert [r["source"] for r in records] == ["tr en 1", "tr en 2"]
    tail = wmt_spec(spec["dataset"], "train[-2:]")
    assert [r["source"] for r in hf_source(**task_opts(test=tail)).task_records("t", TRANSLATION, "test", 10)] == [
        "tr en 4",
        "tr en 5",
    ]
    with pytest.raises(DataError, match=r"split 'train\[:10%\]': a saved dataset takes row slices"):
        hf_source(**task_opts(test=wmt_spec(spec["dataset"], "train[:10%]"))).task_records("t", TRANSLATION, "test", 10)


def test_hf_specs_list_is_concatenated_keeping_the_language_mix(tmp_path):
    de = save_dict(tmp_path / "de", validation={"text": ["Ein Text.", "Noch einer."], "summary": ["E", "N"]})
    en = save_dict(tmp_path / "en", validation={"article": ["An article."], "highlights": ["A"]})
    specs = [
        {"dataset": de, "split": "validation", "columns": {"source": "text", "target": "summary"}, "lang": "de"},
        {"dataset": en, "split": "validation", "columns": {"source": "article", "target": "highlights"}, "lang": "en"},
    ]
    records = hf_source(**task_opts(dev=specs)).task_records("t", SUMMARIZATION, "dev", 10)
    assert records == [
        {"source": "Summarize the following document in German: Ein Text.", "target": "E", "lang": "de"},
        {"source": "Summarize the following document in German: Noch einer.", "target": "N", "lang": "de"},
        {"source": "Summarize the following document in English: An article.", "target": "A", "lang": "en"},
    ]


def flores_like(tmp_path, deu_rows=3):
    """A local dataset directory with one config per language, rows aligned (Flores+ layout)."""
    root = tmp_path / "flores"
    for lang, words in (("fra", ["bonjour", "chat", "maison"]), ("deu", ["hallo", "Katze", "Haus"][:deu_rows])):
        (root / lang).mkdir(parents=True)
        write_jsonl(root / lang / "devtest.jsonl", [{"id": i, "text": w} for i, w in enumerate(words)])
    configs = "".join(
        f"- config_name: {c}_Latn\n  data_files:\n  - split: devtest\n    path: {c}/devtest.jsonl\n"
        for c in ("fra", "deu")
    )
    (root / "README.md").write_text(f"---\nconfigs:\n{configs}---\n")
    return str(root)


def flores_opts(path):
    return {
        "zero_shot": {
            "t": {
                "fr": {
                    "dataset": path,
                    "config": "fra_Latn",
                    "target_config": "deu_Latn",
                    "split": "devtest",
                    "columns": {"source": "text", "target": "text"},
                    "lang": "fr",
                }
            }
        }
    }


def test_hf_target_config_aligns_rows_of_two_configs(tmp_path):
    source = hf_source(**flores_opts(flores_like(tmp_path)))
    records = source.zero_shot_records("t", "fr", {"target_lang": "de"}, 2)
    pairs = {"bonjour": "hallo", "chat": "Katze", "maison": "Haus"}
    assert len(records) == 2 and all(pairs[r["source"]] == r["target"] and r["lang"] == "fr" for r in records)
    assert source.manifest()["datasets"][0]["target_config"] == "deu_Latn"


def test_hf_target_config_with_other_row_count_is_an_error(tmp_path):
    source = hf_source(**flores_opts(flores_like(tmp_path, deu_rows=2)))
    assert "'deu_Latn' has 2 rows, not 3" in one_line_error(
        source.zero_shot_records, "t", "fr", {"target_lang": "de"}, 5
    )


def test_hf_target_config_on_a_saved_dataset_is_an_error(tmp_path):
    # a save_to_disk directory has no configs: the "target" would silently be the source rows
    options = flores_opts(save_dict(tmp_path / "d", devtest={"text": ["a", "b"]}))
    message = one_line_error(hf_source(**options).zero_shot_records, "t", "fr", {"target_lang": "de"}, 5)
    assert "target_config 'deu_Latn'" in message and "save_to_disk" in message


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_hf_builder_with_data_files(tmp_path, fmt):
    rows = [{"src": "one", "tgt": "eins"}, {"src": "two", "tgt": "zwei"}]
    path = write_table(tmp_path / f"data.{fmt}", rows, {"json": "jsonl"}.get(fmt, fmt))
    spec = {"dataset": fmt, "data_files": path, "split": "train", "columns": {"source": "src", "target": "tgt"}}
    records = hf_source(**task_opts(dev=spec)).task_records("t", TRANSLATION, "dev", 5)
    assert records == [
        {"source": "one", "target": "eins", "lang": "en"},
        {"source": "two", "target": "zwei", "lang": "en"},
    ]


def test_hf_pretraining_streams_val_then_train_without_overlap(tmp_path):
    corpus = {
        lang: save_dict(tmp_path / lang, train={"content": [f"{lang}  line {i}" for i in range(120)]})
        for lang in ("en", "de")
    }
    source = hf_source(
        pretrain={
            lang: {"dataset": path, "split": "train", "columns": {"text": "content"}} for lang, path in corpus.items()
        }
    )
    splits = {k: list(v) for k, v in sources.pretrain_splits(source, "ende", ["en", "de"], 100, 0.02).items()}
    assert splits["val"] == ["en line 0", "de line 0", "en line 1", "de line 1"]
    assert splits["train"][:4] == ["en line 2", "de line 2", "en line 3", "de line 3"]
    assert len(splits["train"]) == 200 and not set(splits["val"]) & set(splits["train"])


def test_hf_hub_id_offline_is_one_line_with_how_to_prefetch():
    source = hf_source(**task_opts(test={"dataset": "nonexistent-org/nonexistent-ds", "split": "test"}))
    message = one_line_error(source.task_records, "t", TRANSLATION, "test", 5)
    assert message.startswith("dataset nonexistent-org/nonexistent-ds, split test: cannot load it")
    assert "hf download nonexistent-org/nonexistent-ds" in message and "data.source: local" in message


def test_hf_missing_column_lists_the_available_ones(tmp_path):
    spec = wmt_spec(wmt_like(tmp_path), "test", columns={"source": "translation.fr", "target": "translation.de"})
    message = one_line_error(hf_source(**task_opts(test=spec)).task_records, "t", TRANSLATION, "test", 5)
    assert "no column 'translation.fr' (columns: ['translation'])" in message


def test_hf_missing_split_names_the_existing_ones(tmp_path):
    source = hf_source(**task_opts(dev=wmt_spec(wmt_like(tmp_path), "validation")))
    message = one_line_error(source.task_records, "t", TRANSLATION, "dev", 5)
    assert "no split 'validation' (splits: ['train', 'test'])" in message


def test_hf_too_few_train_rows(tmp_path):
    source = hf_source(**task_opts(train=wmt_spec(wmt_like(tmp_path), "train")))
    assert "has 6 rows, fewer than the 50" in one_line_error(source.task_records, "t", TRANSLATION, "train", 50)


# --- local.py ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv", "tsv"])
def test_local_table_formats_with_column_mapping(tmp_path, fmt):
    spec = {
        "path": write_table(tmp_path / f"d.{fmt}", ROWS, fmt),
        "columns": {"source": "src", "target": "tgt", "lang": "language"},
    }
    records = local_source(**task_opts(dev=spec)).task_records("t", TRANSLATION, "dev", 10)
    assert records == [{"source": r["src"], "target": r["tgt"], "lang": r["language"]} for r in ROWS]


def test_local_lang_column_by_default_and_summarization_prefix(tmp_path):
    path = write_table(tmp_path / "s.parquet", [{"source": "Doc.", "target": "D", "lang": "de"}], "parquet")
    records = local_source(**task_opts(test={"path": path})).task_records("t", SUMMARIZATION, "test", 10)
    assert records == [{"source": "Summarize the following document in German: Doc.", "target": "D", "lang": "de"}]


def test_local_moses_pair(tmp_path):
    (tmp_path / "t.en").write_text("\ufeffone\n  two  words \n\nfour\n", encoding="utf-8")
    (tmp_path / "t.de").write_text("eins\nzwei Worte\ndrei\nvier\n", encoding="utf-8")
    spec = {"source": str(tmp_path / "t.en"), "target": str(tmp_path / "t.de"), "lang": "en"}
    records = local_source(**task_opts(test=spec)).task_records("t", TRANSLATION, "test", 10)
    assert [(r["source"], r["target"]) for r in records] == [
        ("one", "eins"),
        ("two words", "zwei Worte"),
        ("four", "vier"),
    ]


def test_local_pretraining_text_files_val_then_train(tmp_path):
    for lang in ("en", "de"):
        (tmp_path / f"{lang}.txt").write_text("".join(f"{lang} {i}\n\n" for i in range(150)), encoding="utf-8")
    source = local_source(pretrain={lang: {"path": str(tmp_path / f"{lang}.txt")} for lang in ("en", "de")})
    splits = {k: list(v) for k, v in sources.pretrain_splits(source, "ende", ["en", "de"], 100, 0.02).items()}
    assert splits["val"] == ["en 0", "de 0", "en 1", "de 1"]
    assert splits["train"][:2] == ["en 2", "de 2"] and len(splits["train"]) == 200
    assert not set(splits["val"]) & set(splits["train"])
    wider = {k: list(v) for k, v in sources.pretrain_splits(source, "ende", ["en", "de"], 100, 0.05).items()}
    assert wider["val"][-2:] == ["en 4", "de 4"] and wider["train"][:2] == ["en 5", "de 5"]


def bad_file(tmp_path, kind):
    """A spec whose file is broken in one way; (spec, the file the error must name, what it must say)."""
    path = tmp_path / "bad.jsonl"
    if kind == "missing":
        return {"path": str(path)}, path, "file not found"
    if kind == "empty":
        path.write_text("")
        return {"path": str(path)}, path, "empty file"
    if kind == "undecodable":
        path.write_bytes(b"\xff\xfe\xfa")
        return {"path": str(path)}, path, "not UTF-8"
    if kind == "missing column":
        write_jsonl(path, [{"source": "a", "tgt": "b"}])
        return {"path": str(path)}, path, "line 1 has no column 'target' (columns: ['source', 'tgt'])"
    if kind == "invalid json":
        path.write_text('{"source": "a", "target": "b"}\n{"source": oops}\n')
        return {"path": str(path)}, path, "line 2 is not valid JSON"
    (tmp_path / "p.en").write_text("a\nb\n")
    (tmp_path / "p.de").write_text("a\n")
    return (
        {"source": str(tmp_path / "p.en"), "target": str(tmp_path / "p.de")},
        tmp_path / "p.en",
        "2 lines but its pair",
    )


@pytest.mark.parametrize("kind", ["missing", "empty", "undecodable", "missing column", "invalid json", "unequal pair"])
def test_local_bad_file_is_a_one_line_error_naming_it(tmp_path, kind):
    spec, path, says = bad_file(tmp_path, kind)
    message = one_line_error(local_source(**task_opts(dev=spec)).task_records, "t", TRANSLATION, "dev", 5)
    assert message.startswith(str(path)) and says in message


def test_local_configured_column_missing_from_parquet(tmp_path):
    path = write_table(tmp_path / "d.parquet", [{"source": "a", "target": "b"}], "parquet")
    spec = {"path": path, "columns": {"lang": "language"}}
    message = one_line_error(local_source(**task_opts(dev=spec)).task_records, "t", TRANSLATION, "dev", 5)
    assert message == f"{path}: no column 'language' (columns: ['source', 'target'])"


def test_local_selection_is_deterministic_per_seed_task_and_split(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"source": f"s{i}", "target": f"t{i}"} for i in range(50)])
    spec = {"path": path}

    def pick(seed=0, task="t", split="dev"):
        records = local_source(seed, **task_opts(task, dev=spec, test=spec)).task_records(task, TRANSLATION, split, 5)
        return [r["source"] for r in records]

    assert pick() == pick() and len(pick()) == 5
    assert pick() == sorted(pick(), key=lambda s: int(s[1:]))  # kept in file order
    assert pick(seed=1) != pick()
    assert pick(task="other") != pick()
    assert pick(split="test") != pick()


def test_local_task_splits_cap_dev_and_test_at_what_exists(tmp_path):
    spec = {"path": write_jsonl(tmp_path / "d.jsonl", [{"source": f"s{i}", "target": f"t{i}"} for i in range(4)])}
    source = local_source(**task_opts(train=spec, dev=spec, test=spec))
    task = TRANSLATION | {"train_examples": 3, "dev_examples": 10, "test_examples": 4}
    splits = sources.task_splits(source, "t", task)
    assert {k: len(v) for k, v in splits.items()} == {"train": 3, "dev": 4, "test": 4}
    assert [r["source"] for r in splits["dev"]] == ["s0", "s1", "s2", "s3"]
    assert "has 4 rows, fewer than the 10" in one_line_error(source.task_records, "t", TRANSLATION, "train", 10)
