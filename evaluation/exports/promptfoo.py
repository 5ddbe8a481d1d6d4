"""A promptfoo configuration (promptfooconfig.yaml): `description`, one chat `prompts` entry that
sends each test's `messages` variable as the conversation, `providers` left for the user to set,
`defaultTest` with one `llm-rubric` assertion per axis (so every test is graded on every axis),
and one test per workshop prompt with its provenance in `metadata`.

promptfoo renders prompts, variables and rubric text with Nunjucks: in every text taken from the
workshop the openers `{{`, `{%` and `{#` get a space (`{ {`), so that a participant's text can
never run as a template."""

from __future__ import annotations

import re
from collections.abc import Iterator

from evaluation.exports import common, yamlout
from workshops.models import Workshop

PROVIDER_PLACEHOLDER = "openai:chat:SET-THE-MODEL-UNDER-TEST"
GRADER_PLACEHOLDER = "openai:chat:SET-THE-GRADER-MODEL"
_TEMPLATE_OPENERS = re.compile(r"\{(?=[{%#])")


def inert(text: str) -> str:
    return _TEMPLATE_OPENERS.sub("{ ", text)


def rubric_value(r: common.AxisRubric) -> str:
    return inert(
        f"{r.grading_text()}\n\n"
        "Grade the output on this scale and report it as a score between 0 and 1: "
        "1 -> 0.0, 2 -> 0.25, 3 -> 0.5, 4 -> 0.75, 5 -> 1.0. "
        "It passes at 4 or 5 (score 0.75 or more).\n"
        f"(CALMA {r.provenance})")


def header(workshop: Workshop) -> dict:
    asserts = [{"type": "llm-rubric", "metric": f"axis_{r.axis_id}", "value": rubric_value(r), "threshold": 0.75}
               for r in common.rubrics(workshop)]
    return {
        "description": inert(f"CALMA workshop {workshop.slug}: {workshop.title}"),
        "prompts": [{"id": "calma-conversation", "label": "workshop conversation", "raw": "{{ messages | dump }}"}],
        "providers": [PROVIDER_PLACEHOLDER],
        "defaultTest": {"options": {"provider": GRADER_PLACEHOLDER}, "assert": asserts},
    }


def test_entry(workshop: Workshop, prompt: common.Prompt) -> dict:
    messages = [{"role": "system", "content": inert(workshop.system_prompt)}] if workshop.system_prompt.strip() else []
    messages += [{"role": m["role"], "content": inert(m["content"])} for m in prompt.messages]
    return {
        "description": f"{workshop.slug} {prompt.prompt_id}",
        "vars": {"messages": messages},
        "metadata": {"workshop": workshop.slug, "prompt_id": prompt.prompt_id, "message_id": prompt.message_id,
                     "conversation_id": prompt.conversation_id, "is_baseline": prompt.is_baseline},
    }


def config(workshop: Workshop) -> Iterator[str]:
    yield ("# promptfoo configuration exported from CALMA Workshops.\n"
           "# Set `providers` (the models to test) and `defaultTest.options.provider` (the grader) before\n"
           "# running `npx promptfoo@latest eval -c promptfooconfig.yaml`. See docs/evaluation.md.\n")
    yield yamlout.dump(header(workshop))
    any_test = False
    for prompt in common.prompts(workshop):
        if not any_test:
            yield "tests:\n"
            any_test = True
        yield yamlout.list_item(test_entry(workshop, prompt))
    if not any_test:
        yield "tests: []\n"
