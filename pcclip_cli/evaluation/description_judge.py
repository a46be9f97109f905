"""An LLM judge for EX2's description analysis: a few-shot rubric per description, its answer read as a verdict."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .description_verdict import CATEGORIES, Verdict

DEFAULT_JUDGE_PROMPT = "description-judge"

_ANSWER = re.compile(r"^\W*(spurious|informative)\b(.*)$")
_NON_VISUAL = re.compile(r"\bnon[\s-]*visual\b")
_VISUAL = re.compile(r"\bvisual\b")
_LEADING_VISUAL = re.compile(r"^\W*(non[\s-]*visual|visual)\b")


def parse_judgement(answer: str) -> Verdict | None:
    """A judge's answer as a verdict, or None when it does not read as the rubric asks."""
    line = answer.strip().split("\n", 1)[0].strip().lower()
    if _LEADING_VISUAL.match(line):  # "non-visual; habitat" says informative without the word
        line = "informative; " + line.lstrip(" \t\"'*-:;,.")
    m = _ANSWER.match(line)
    if m is None:
        return None
    if m.group(1) == "spurious":
        return Verdict(False, False, (), (line,))
    tail = m.group(2)
    if _NON_VISUAL.search(tail):
        visual, tail = False, _NON_VISUAL.sub(" ", tail)
    elif _VISUAL.search(tail):
        visual = True
    else:
        return None
    named = set(re.findall(r"[a-z]+", tail)) | ({"colour"} if re.search(r"\bcolor\b", tail) else set())
    return Verdict(True, visual, tuple(c for c in CATEGORIES if c in named), (line,))


@dataclass
class Judge:
    """An LLM judge: a registered LLM name and a `judge` prompt (shipped name or file)."""

    llm: str
    prompt: str = DEFAULT_JUDGE_PROMPT
    max_tokens: int = 32
    batch_size: int = 8

    def prepare(self):
        from pcclip_cli.generation.prompts import load_prompt
        from pcclip_cli.llm.registry import resolve

        prompt = load_prompt(self.prompt, kind="judge")
        resolve(self.llm)  # an unknown name fails before anything loads
        return prompt

    def run(self, items: list[tuple[str, str]], prompt, progress=None) -> tuple[list[Verdict | None], list[str]]:
        """Verdicts (None: unparseable) and raw answers for (concept, text) items, greedy and in order."""
        from pcclip_cli.llm.base import Params, Request
        from pcclip_cli.llm.registry import get_llm

        llm = get_llm(self.llm)
        requests = [Request(key=f"judge-{i}", prompt=prompt.render(class_name=c, description=t),
                            kind="descriptions", first=c, n=i) for i, (c, t) in enumerate(items)]
        params = Params(max_tokens=self.max_tokens, temperature=0.0, stop=(*prompt.stop, "\n"))
        answers: dict[str, str] = {}
        try:
            for req, completion in llm.stream(requests, params, batch_size=self.batch_size):
                answers[req.key] = completion.text
                if progress:
                    progress(len(answers), len(requests))
        finally:
            llm.close()
        raw = [answers[r.key] for r in requests]
        return [parse_judgement(a) for a in raw], raw
