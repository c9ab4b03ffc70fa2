"""Every shell and YAML snippet in README.md, tests/README.md and docs/ works as written: each is
marked with how to check it, and the marked snippets of a document run in order in a sandbox copy
of the repository (tests/documents.py; the kinds are in tests/README.md)."""

import pytest

from tests.documents import CHECKS, DOCUMENTS, FENCE, GIVEN, KINDS, MARKER, ROOT, SHELL, YAML, sandbox, snippets


def test_every_snippet_is_marked():
    problems = []
    for document in DOCUMENTS:
        for snippet in snippets(document):
            if not snippet.lang:
                problems.append(f"{snippet}: a fence without a language (```text for output)")
            elif snippet.lang in SHELL | YAML and snippet.kind not in KINDS:
                problems.append(f"{snippet}: {snippet.lang} block without a <!-- snippet: KIND --> marker")
            elif snippet.lang in YAML and snippet.kind != "config":
                problems.append(f"{snippet}: a YAML snippet is a config snippet")
            elif snippet.kind == "parse" and not snippet.reason:
                problems.append(f"{snippet}: a parse-only snippet says why it does not run, in (...)")
        text = document.read_text().splitlines()
        for n, line in enumerate(text):
            if MARKER.match(line) and not (n + 1 < len(text) and FENCE.match(text[n + 1])):
                problems.append(f"{document.relative_to(ROOT)}:{n + 1}: a marker not followed by a fence")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "document",
    [d for d in DOCUMENTS if any(s.kind in KINDS for s in snippets(d))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_snippets_of_a_document_work_in_order(document, tmp_path):
    marked = [s for s in snippets(document) if s.kind in KINDS]
    box, env = sandbox(tmp_path)
    for snippet in marked:
        given = snippet.options.get("given")
        if given:
            GIVEN[given](box)
        CHECKS[snippet.kind](snippet, box, env)
