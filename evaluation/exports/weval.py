"""A Weval blueprint (weval-org/app, docs/BLUEPRINT_FORMAT.md), "config header + prompts"
structure: a first YAML document with the header fields (`title`, `description`, `tags`,
`system`), `---`, then a second document that is the list of prompts. Each prompt has an `id`,
the question as `prompt` (single turn) or `messages` (role/content, the conversation up to the
question), a `citation` naming where it came from, and `should` / `should_not` points in the full
object form (`point`, `citation`) — never the bare-string form, so that text beginning with `$`
can never be read as one of Weval's `$function` checks."""

from __future__ import annotations

from collections.abc import Iterator

from evaluation.exports import common, yamlout
from workshops.models import Workshop


def points(rubric_list: list[common.AxisRubric]) -> tuple[list[dict], list[dict]]:
    should, should_not = [], []
    for r in rubric_list:
        cite = f"CALMA {r.provenance}"
        for text in r.should:
            should.append({"point": f"[{r.axis_name}] {text}", "citation": cite})
        if r.scale.get("5"):
            should.append({"point": f"[{r.axis_name}] Reads like the top of this axis (5): {r.scale['5']}",
                           "citation": cite})
        for text in r.should_not:
            should_not.append({"point": f"[{r.axis_name}] {text}", "citation": cite})
        if r.scale.get("1"):
            should_not.append({"point": f"[{r.axis_name}] Reads like the bottom of this axis (1): {r.scale['1']}",
                               "citation": cite})
    return should, should_not


def header(workshop: Workshop, rubric_list) -> dict:
    axes = "; ".join(f"{r.axis_name} ({r.provenance})" for r in rubric_list) or "none yet"
    data = {
        "title": f"CALMA: {workshop.title}",
        "description": (f"Prompts asked in the CALMA workshop '{workshop.slug}' and the axes its participants "
                        f"derived, as should / should_not points. Axes: {axes}."),
        "tags": ["calma", f"calma-{workshop.slug}"],
    }
    if workshop.system_prompt.strip():
        data["system"] = workshop.system_prompt
    return data


def prompt_entry(workshop: Workshop, prompt: common.Prompt, should: list, should_not: list) -> dict:
    entry = {"id": f"{workshop.slug}-{prompt.prompt_id}"}
    if len(prompt.messages) == 1:
        entry["prompt"] = prompt.question
    else:
        entry["messages"] = [{"role": m["role"], "content": m["content"]} for m in prompt.messages]
    entry["citation"] = (f"CALMA workshop {workshop.slug}, conversation {prompt.conversation_id}, "
                         f"message {prompt.message_id}" + (" (baseline)" if prompt.is_baseline else ""))
    if should:
        entry["should"] = should
    if should_not:
        entry["should_not"] = should_not
    return entry


def blueprint(workshop: Workshop) -> Iterator[str]:
    rubric_list = common.rubrics(workshop)
    should, should_not = points(rubric_list)
    yield f"# Weval blueprint exported from CALMA Workshops (workshop {workshop.slug}).\n"
    yield yamlout.dump(header(workshop, rubric_list))
    yield "---\n"
    any_prompt = False
    for prompt in common.prompts(workshop):
        any_prompt = True
        yield yamlout.list_item(prompt_entry(workshop, prompt, should, should_not))
    if not any_prompt:
        yield "[]\n"
