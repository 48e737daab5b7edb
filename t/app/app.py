"""The existing FastAPI app that the usage gate fronts.

This is the seed's `/ask` endpoint with the Python usage gate taken out:
nginx (with ngx_http_usage_gate_module) now decides who may call, on which
plan, and how often.  The app only reads the identity headers that the gate
writes upstream (X-User-Id, X-Org-Id, X-Plan, X-Usage-Owner,
X-Usage-Month-Used, X-Usage-Month-Remaining) and echoes them back under
"seen", so that a demo or a test can check exactly what reached the app.

There is no model: the "decision" is a deterministic function of the agent
and the question.

Run:  /usr/bin/python3 -m uvicorn app:app --app-dir examples \
          --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import hashlib
from typing import Dict, Optional

from fastapi import FastAPI, Request
from pydantic import BaseModel

app = FastAPI(title="Collective /ask (behind ngx_http_usage_gate_module)")

# The headers the usage gate sets on the upstream request.
SEEN_HEADERS = (
    "x-user-id",
    "x-org-id",
    "x-plan",
    "x-usage-owner",
    "x-usage-month-used",
    "x-usage-month-remaining",
)

DECISIONS = ("yes", "no", "wait")


class AskReq(BaseModel):
    agent: str
    question: str


def seen(request: Request) -> Dict[str, Optional[str]]:
    """The identity headers as the app received them (None when absent).

    A header sent more than once is reported joined with ", ", so that a
    duplicate is visible rather than hidden.
    """
    out: Dict[str, Optional[str]] = {}
    for name in SEEN_HEADERS:
        values = request.headers.getlist(name)
        out[name] = ", ".join(values) if values else None
    return out


def decide(agent: str, question: str):
    """A stand-in for the model: same input, same answer."""
    digest = hashlib.sha256(f"{agent}\n{question}".encode()).digest()
    decision = DECISIONS[digest[0] % len(DECISIONS)]
    confidence = round(0.5 + (digest[1] / 255) * 0.49, 2)
    why = {
        "agent": agent,
        "signals": [f"s{b % 10}" for b in digest[2:5]],
        "model": "deterministic-stub",
    }
    return decision, confidence, why


@app.post("/ask")
async def ask(req: AskReq, request: Request):
    decision, confidence, why = decide(req.agent, req.question)
    return {
        "agent": req.agent,
        "decision": decision,
        "confidence": confidence,
        "why": why,
        "seen": seen(request),
    }


@app.get("/pulse/snapshot")
async def pulse_snapshot(request: Request):
    return {
        "pulse": "steady",
        "agents": 3,
        "seen": seen(request),
    }


@app.get("/health")
async def health():
    return {"status": "ok"}
