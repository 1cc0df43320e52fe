"""Mermaid diagram of a flow, so people can see the call paths (docs/flow.md)."""
from __future__ import annotations

from ivr.flow.checker import step_transitions
from ivr.flow.loader import Flow


def _node(step_id: str, flow: Flow) -> str:
    step = flow.steps[step_id]
    if step.takes_input:
        return f'{step_id}["{step_id}"]'
    if step.do:
        return f'{step_id}{{"{step_id}<br/>{step.do}"}}'
    if step.enqueue:
        return f'{step_id}[("{step_id}<br/>queue")]'
    return f'{step_id}("{step_id}")'


def mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", f"  call((call)) --> {flow.start}"]
    for step_id in flow.steps:
        lines.append("  " + _node(step_id, flow))
    for step_id, step in flow.steps.items():
        for label, transition in step_transitions(step):
            target = transition.goto
            if target.startswith("@"):
                continue
            text = label.replace("key ", "").replace("result ", "")
            lines.append(f'  {step_id} -- "{text}" --> {target}')
    lines.append(f'  anywhere(("any question")) -- "0" --> {flow.person_step}')
    return "\n".join(lines)
