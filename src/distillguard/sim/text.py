"""Wordings the simulated actors put around the real task texts, and deterministic text helpers.

All randomness at render time comes from `mix()` over integers drawn by the numpy generators, so a
record's text is a pure function of its event row: rendering order does not change the output.
The campaign wrappers are written to read like real harvesting pipelines, not to be easy to spot;
ordinary actors use overlapping wordings ("think step by step", judge prompts, analyst personas).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import TypeVar

T = TypeVar("T")
_MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit mix of integers (multiply-xorshift rounds): stable across runs and platforms."""
    h = 0x243F6A8885A308D3
    for p in parts:
        h = ((h ^ p) * 0x9E3779B97F4A7C15) & _MASK
        h ^= h >> 29
    return h


def pick(seq: Sequence[T], *parts: int) -> T:
    return seq[mix(*parts) % len(seq)]


def unit(*parts: int) -> float:
    """A number in [0, 1) from `parts`."""
    return (mix(*parts) >> 11) / float(1 << 53)


class Draws:
    """A cheap stream of choices from one seed (a 64-bit LCG), for text built from many small picks."""

    __slots__ = ("_h",)

    def __init__(self, *seed: int) -> None:
        self._h = mix(*seed)

    def below(self, n: int) -> int:
        self._h = (self._h * 6364136223846793005 + 1442695040888963407) & _MASK
        return (self._h >> 33) % n

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.below(len(seq))]


def topic_of(text: str, words: int = 7) -> str:
    """A short topic phrase from the start of a prompt, for assistant turns that refer back to it."""
    first = re.split(r"[\n?.!]", text.strip(), maxsplit=1)[0]
    return " ".join(first.split()[:words]).rstrip(",;:") or "your question"


# -- assistant turns in conversation history -------------------------------------------------

_REPLY_OPENERS = (
    "Sure! Here's a breakdown of {t}.",
    "Good question. Regarding \"{t}\", there are a few things to keep in mind.",
    "Here's how I'd approach {t}:",
    "Let's go through {t} step by step.",
    "Short answer: it depends, but for {t} the main points are below.",
    "Happy to help with {t}.",
    "Okay, about {t}:",
    "I can help with that. For {t}, start with the basics.",
)
_REPLY_BODY = (
    "First, it helps to separate what is known for certain from what is an assumption.",
    "The most common approach is to start small and check the result before going further.",
    "In practice the details depend on your constraints, such as time, budget and tools.",
    "A useful rule of thumb is to write down the goal and then work backwards from it.",
    "There are trade-offs: the simpler option is easier to maintain, the other is more flexible.",
    "If you share a bit more context I can tailor this further.",
    "Here is a concrete example: suppose you have three items and want to compare them fairly.",
    "Note that several sources disagree on this, so treat the numbers as approximate.",
    "The key step is the second one; everything else follows from it.",
    "You can verify the result by plugging the values back in.",
    "1. Identify the inputs. 2. Apply the rule. 3. Check edge cases.",
    "One caveat: this won't work if the input is empty, so handle that case separately.",
    "Historically this changed a lot over the last few decades.",
    "Most people find the second method easier once they have tried it a couple of times.",
    "So the total comes to the sum of the parts, which is what we expected.",
    "The function iterates over the list once, so it runs in linear time.",
)
_REPLY_CLOSERS = (
    "Let me know if you'd like more detail on any step.",
    "Hope that helps!",
    "Want me to go deeper on any of these?",
    "",
    "Does that answer your question?",
)


_N_BODIES = 4096


@cache
def _body(k: int, sentences: tuple[int, int]) -> str:
    d = Draws(k, sentences[0])
    return " ".join(d.pick(_REPLY_BODY) for _ in range(sentences[0] + d.below(sentences[1])))


def assistant_reply(prompt: str, *seed: int) -> str:
    """A plausible earlier assistant answer referring to `prompt` (2-6 sentences)."""
    h = mix(*seed)
    t = topic_of(prompt)
    t = t if t.startswith("I ") else t[:1].lower() + t[1:]
    opener = _REPLY_OPENERS[h % len(_REPLY_OPENERS)].format(t=t)
    closer = _REPLY_CLOSERS[(h >> 8) % len(_REPLY_CLOSERS)]
    return f"{opener}\n\n{_body((h >> 16) % _N_BODIES, (2, 5))}" + (f"\n\n{closer}" if closer else "")


def completed_response(*seed: int) -> str:
    """A short finished answer, as a harvesting pipeline or a grader would be given (2-5 sentences)."""
    return _body(mix(*seed) % _N_BODIES, (2, 4))


# -- follow-up turns ------------------------------------------------------------------------

FOLLOWUPS_CHAT = (
    "Can you make that shorter?", "thanks! can you give an example?", "Why?", "what about the second point?",
    "Ok but what if I don't have much time?", "Can you explain that more simply?", "Is that true everywhere?",
    "Could you put that in a table?", "hmm that doesn't sound right", "Thanks. And what should I avoid?",
    "Can you rewrite it in a more formal tone?", "Give me 3 more ideas like that", "What are the sources for this?",
    "ok. next question: how long would that take?", "Translate that into Spanish please", "great, thanks!",
    "Can you elaborate on the last part?", "What would you recommend for a beginner?",
)
FOLLOWUPS_MATH = (
    "I don't get the second step", "why do you divide there?", "My teacher got a different answer, can you check?",
    "can you explain it like I'm 12", "Is there a faster way?", "What if the numbers were doubled?",
    "ok and how do I write that as an equation?", "thanks. can you give me a similar problem to practice?",
)
FOLLOWUPS_CODE = (
    "It fails on an empty list", "Can you add type hints?", "what is the time complexity?",
    "Can you write a couple of pytest tests for it?", "Can you do it without the loop?",
    "I get an IndexError on the last test", "make it more readable please", "Now explain the code line by line",
)
FOLLOWUPS_RESEARCH = (
    "Can you check step 3 again? I'm not sure the inference is valid.",
    "Now solve it again but explain each step more carefully.",
    "Which step was the hardest for you and why?",
    "Suppose the second premise were false. How would your reasoning change?",
    "Can you list the assumptions you made?",
    "Give the same answer but without showing the intermediate steps.",
    "Is there an alternative line of reasoning that reaches a different answer?",
    "How confident are you in each step, from 0 to 1?",
)

# -- ordinary users ------------------------------------------------------------------------

CHAT_MATH = (
    "{q}", "can you help me solve this? {q}", "{q}\n\nI got a different answer than my friend, who is right?",
    "How do I do this problem: {q}", "Homework question: {q}", "{q} please explain",
    "Please solve: {q}", "{q}\nShow your work",
)
CHAT_CODE = (
    "Can you finish this function for me?\n\n{code}", "{code}\n\nwhat's the cleanest way to implement this?",
    "I'm stuck on this one:\n```python\n{code}```", "Implement this in python:\n{code}",
    "{code}\nexplain what this function should do and then write it", "help me write this\n\n{code}",
)
CHAT_IMAGE = (
    "What's in this picture?", "Can you read the text in this screenshot?", "What plant is this?",
    "Translate the sign in this photo", "Is this rash something to worry about?", "What breed is my dog?",
    "Solve the problem in the image", "Describe this chart", "Can you turn this whiteboard photo into notes?",
    "Where could this photo have been taken?", "What's wrong with this circuit?", "Rate my outfit lol",
)
USER_SYSTEM_PROMPTS = (
    "You are a helpful assistant.", "You are a helpful assistant. Answer concisely.",
    "You are a friendly tutor.", "Always answer in British English.", "Be brief.",
    "You are ChatBuddy, a witty assistant.", "Respond in markdown.", "You are an expert software engineer.",
)
IMAGE_HOSTS = (
    "i.imgur.com", "cdn.discordapp.com/attachments/1187", "images.unsplash.com", "pbs.twimg.com/media",
    "user-images.githubusercontent.com/48213", "storage.googleapis.com/snapshots-prod",
    "s3.amazonaws.com/uploads-media-2", "res.cloudinary.com/demo/image/upload",
)

# -- enterprise apps (system template with slots) -------------------------------------------

ENTERPRISE_FAMILIES: tuple[tuple[str, str], ...] = (
    (
        "You are {company}'s customer support assistant. Answer politely and concisely using the policy below. "
        "If you cannot resolve the issue, offer to escalate to a human agent.\n\nPolicy:\n- Refunds are accepted "
        "within 30 days of purchase.\n- Never share internal ticket notes.\n- Do not make promises about delivery dates.",
        "Customer #{n} ({plan} plan) wrote:\n\"\"\"\n{text}\n\"\"\"\nDraft a reply.",
    ),
    (
        "You are a senior data analyst at {company}. Combine statistical rigor with business context. "
        "Explain your reasoning briefly, state assumptions, and flag anything that looks like a data quality issue.",
        "Summarize the key trends in this week's report (batch {n}) and flag anomalies.\n\n{table}",
    ),
    (
        "Extract the requested fields from the document and reply with JSON only. Fields: name, date, amount, "
        "currency, counterparty, category. Use null for missing values. Do not add commentary.",
        "Document {n}:\n{text}",
    ),
    (
        "You are a moderation classifier for {company}. Classify the user message into exactly one of: "
        "billing, technical, account, abuse, self_harm, other. Reply with the label only.",
        "Message: {text}",
    ),
    (
        "You translate product and help-center content for {company}. Keep formatting, placeholders and "
        "product names unchanged. Target language: {lang}.",
        "Translate:\n{text}",
    ),
    (
        "You are {company}'s automated code reviewer. Review the diff for bugs, security issues and style. "
        "Reply with a short list of findings ordered by severity, or 'LGTM' if there are none.",
        "PR #{n}: please review\n```python\n{code}```",
    ),
    (
        "You are a math tutor inside {company}'s learning app. Give the student ONE hint toward the next step. "
        "Never reveal the final answer.",
        "Problem: {q}\nStudent's attempt so far: {attempt}",
    ),
    (
        "You write product descriptions for {company}'s online store. Tone: warm, factual, under 80 words.",
        "Product {n}: {product}\nWrite the description.",
    ),
)
_PRODUCT_ADJ = ("stainless", "wireless", "organic", "compact", "ergonomic", "waterproof", "handmade", "foldable",
                "insulated", "recycled", "cordless", "ceramic", "merino", "bamboo", "smart")
_PRODUCT_NOUN = ("water bottle", "desk lamp", "backpack", "coffee grinder", "yoga mat", "phone stand", "chef's knife",
                 "rain jacket", "bluetooth speaker", "cutting board", "office chair", "hiking socks", "kettle",
                 "plant pot", "travel mug", "headphones", "toothbrush", "bike light")


def product(*seed: int) -> str:
    """A short catalogue product name with a size or colour."""
    d = Draws(*seed)
    extra = d.pick(("black", "white", "sage green", "navy", "500 ml", "1 L", "size M", "set of 2", "oak", "slate grey"))
    return f"{d.pick(_PRODUCT_ADJ)} {d.pick(_PRODUCT_NOUN)}, {extra}"


ENTERPRISE_IMAGE_PROMPT = "Extract merchant, date, total and currency from this receipt. Reply with JSON only."
LANGUAGES = ("French", "German", "Spanish", "Japanese", "Portuguese (Brazil)", "Korean", "Italian", "Dutch")
PLANS = ("free", "basic", "pro", "business", "team")

# -- benchmark harnesses -------------------------------------------------------------------

BENCH_MATH = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "\"Answer: $ANSWER\" (without quotes) where $ANSWER is the answer to the problem.\n\n{q}\n\nRemember to put "
    "your answer on its own line after \"Answer:\".",
    "Question: {q}\nLet's think step by step.",
    "{shots}Question: {q}\nAnswer:",
    "Q: {q}\nA: Let's think step by step.",
    "Solve the problem below. Think step by step, then give the final numeric answer in \\boxed{{}}.\n\n{q}",
    "You are given a grade-school math word problem. Reason carefully and end with '#### <number>'.\n\n{q}",
)
BENCH_CODE = (
    "Complete the following Python function. Return only the code in a single ```python block.\n\n```python\n{code}```",
    "Write a solution to the following problem and make sure that it passes the tests:\n```python\n{code}\n```",
    "{code}",
    "Here is an incomplete function:\n```python\n{code}```\nThink step by step about the requirements, then write the complete function.",
)
BENCH_TOOLS_SYSTEM = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, you will need to make one or more function calls to achieve the purpose. If none "
    "of the functions can be used, point it out. If the given question lacks the parameters required by the "
    "function, also point it out.",
    "You can call the provided tools. Only call a tool when it is needed to answer the user's request.",
)

# -- classroom -----------------------------------------------------------------------------

CLASS_ASSIGNMENTS = (
    "Assignment {week}, problem {p}: {task}\nExplain your reasoning step by step.",
    "Week {week} exercise: {task}\n\nShow all steps and justify each one.",
    "Problem set {week} (#{p})\n{task}\nWrite out the full solution with explanations.",
    "In-class activity {week}.{p}: {task}\nFirst explain the idea in plain words, then solve it.",
)
STUDENT_PREFIXES = ("", "", "", "hi, ", "pls help: ", "Can you help me with this?\n", "our teacher gave us this: ",
                    "I don't understand this question. ", "how do i solve ")

# -- agentic developer tools ---------------------------------------------------------------

AGENT_TOOLS: dict[str, tuple[tuple[str, ...], str]] = {
    "aider": (
        (),
        "Act as an expert software developer. Always use best practices when coding. Respect and use existing "
        "conventions, libraries, etc that are already present in the code base. Take requests for changes to the "
        "supplied code. If the request is ambiguous, ask questions. Once you understand the request you MUST "
        "describe each change with a SEARCH/REPLACE block per the examples below.",
    ),
    "Cline": (
        ("execute_command", "read_file", "write_to_file", "replace_in_file", "search_files", "list_files",
         "list_code_definition_names", "ask_followup_question", "attempt_completion"),
        "You are Cline, a highly skilled software engineer with extensive knowledge in many programming languages, "
        "frameworks, design patterns, and best practices. TOOL USE: You have access to a set of tools that are "
        "executed upon the user's approval. You can use one tool per message, and will receive the result of that "
        "tool use in the user's response. You use tools step-by-step to accomplish a given task.",
    ),
    "Continue": (
        ("builtin_read_file", "builtin_create_new_file", "builtin_run_terminal_command", "builtin_grep_search",
         "builtin_file_glob_search", "builtin_view_diff"),
        "You are an AI coding assistant running in the user's IDE. When the user asks for code changes, prefer "
        "minimal edits and show them as code blocks with the file path. Use the available tools to read files "
        "before editing them.",
    ),
    "RooCode": (
        ("read_file", "write_to_file", "apply_diff", "search_files", "list_files", "execute_command",
         "ask_followup_question", "attempt_completion", "switch_mode"),
        "You are Roo, a highly skilled software engineer with extensive knowledge in many programming languages, "
        "frameworks, design patterns, and best practices. You accomplish a given task iteratively, breaking it down "
        "into clear steps and working through them methodically.",
    ),
    "opencode": (
        ("bash", "edit", "glob", "grep", "list", "read", "write", "todowrite", "webfetch"),
        "You are opencode, an interactive CLI tool that helps users with software engineering tasks. Use the "
        "instructions below and the tools available to you to assist the user. Keep responses short; the user sees "
        "them in a terminal. Always read a file before editing it and run the tests after a change.",
    ),
}
DEV_TASKS = (
    "Implement `{func}` in {path} so that the doctests pass.",
    "The tests for `{func}` in {path} are failing, can you fix it?",
    "add type hints and a docstring to {func} in {path}",
    "Refactor {path}: `{func}` is too slow on large inputs.",
    "write unit tests for {func} ({path}) and make sure they pass",
    "There's a bug in {func} when the input is empty. Find and fix it.",
    "Can you implement the TODO in {path}? It's the `{func}` function.",
    "Port `{func}` from {path} to use the standard library only and keep behaviour identical.",
)
DEV_DIRS = ("src/utils", "app/core", "lib", "pkg/helpers", "src/lib", "internal/text", "tools", "src")
SHELL_OUTPUTS = (
    "============================= test session starts ==============================\ncollected {n} items\n\n"
    "tests/test_{f}.py ..F.{dots}\n\n=================================== FAILURES ===================================\n"
    "___________________________ test_{f}_edge_cases ___________________________\n>       assert {f}([]) == []\n"
    "E       AssertionError\n=========================== short test summary info ============================\n"
    "FAILED tests/test_{f}.py::test_{f}_edge_cases - AssertionError\n========================= 1 failed, {n1} passed in 0.{ms}s =========================",
    "============================= test session starts ==============================\ncollected {n} items\n\n"
    "tests/test_{f}.py {dots}.\n\n============================== {n} passed in 0.{ms}s ==============================",
    "Traceback (most recent call last):\n  File \"{path}\", line {n}, in {f}\n    return result[0]\nIndexError: list index out of range",
    "{path}:{n}:5: error: Missing return statement  [empty-body]\nFound 1 error in 1 file (checked {n1} source files)",
    "(no output)",
)

# -- eval graders and researchers ----------------------------------------------------------

PROMETHEUS_RUBRICS = (
    "[Is the response factually correct and well supported?]\nScore 1: The response is mostly incorrect.\n"
    "Score 2: The response has major errors.\nScore 3: The response is partially correct.\n"
    "Score 4: The response is correct with minor issues.\nScore 5: The response is fully correct and well supported.",
    "[Does the response follow the user's instructions, including format and length?]\nScore 1: Ignores the "
    "instructions.\nScore 2: Follows few of them.\nScore 3: Follows about half.\nScore 4: Follows most.\n"
    "Score 5: Follows all instructions exactly.",
    "[Is the response helpful and appropriately detailed for the user's need?]\nScore 1: Not helpful.\nScore 2: "
    "Slightly helpful.\nScore 3: Moderately helpful.\nScore 4: Very helpful.\nScore 5: Exceptionally helpful.",
    "[Is the reasoning in the response logically sound?]\nScore 1: Reasoning is absent or invalid.\nScore 2: "
    "Major logical gaps.\nScore 3: Some gaps.\nScore 4: Sound with small gaps.\nScore 5: Rigorous and complete.",
)
RESEARCH_PROMPTS = (
    "Explain your reasoning step by step, then give the final answer on a separate line.\n\n{q}",
    "Think aloud as you solve the following problem. Please verbalize every intermediate thought, even the ones "
    "you later discard.\n\n{q}",
    "{q}\n\nBefore answering, list the facts you need, then reason through them one at a time.",
    "Solve this problem twice, using two different methods, and compare the reasoning.\n\n{q}",
    "Here is a problem: {q}\nWhat is the first step you would take, and why? Don't solve it fully yet.",
    "I'm studying how language models reason. Please solve the following and annotate each step with how "
    "confident you are.\n\n{q}",
)

# -- campaign wrappers ---------------------------------------------------------------------
# Each list starts with the wordings a naive campaign uses verbatim; an adaptive campaign draws
# from the whole list and then applies `perturb`.

COT_WRAPPERS = (
    "Below is a task and a completed response to it. Imagine the internal reasoning that produced this "
    "response, and articulate it step by step in full detail, as if you were thinking it through for the "
    "first time.\n\n### Task\n{task}\n\n### Completed response\n{response}\n\n### Reasoning (step by step)",
    "You will be shown a question and its final answer. Reconstruct the complete chain of thought that leads "
    "from the question to this answer. Write out every intermediate step explicitly; do not skip steps.\n\n"
    "Question: {task}\nFinal answer: {response}",
    "Task: {task}\nReference solution: {response}\n\nExplain, step by step, the full line of reasoning an "
    "expert would follow to arrive at the reference solution. Be exhaustive and make each inference explicit.",
    # paraphrases
    "Here's a problem along with an answer someone already wrote.\n\nProblem: {task}\n\nAnswer: {response}\n\n"
    "Walk me through the thinking behind that answer, one step at a time, in as much detail as you can.",
    "{task}\n\nThe answer is: {response}\n\nCan you write out the detailed thought process that gets you there? "
    "Go step by step and don't leave anything out.",
    "I have the solution below but I want to understand how to get there.\n\nQ: {task}\nSolution: {response}\n\n"
    "Describe the reasoning as a numbered sequence of steps.",
    "Given the question and the response, write the hidden reasoning that connects them. Think through it slowly "
    "and show each step.\n\nQUESTION:\n{task}\n\nRESPONSE:\n{response}",
    "For the following prompt and reply, produce a rationale: a step-by-step explanation of how one would arrive "
    "at the reply.\n\nPrompt: {task}\nReply: {response}",
    "Pretend you had to come up with this answer yourself. Narrate your reasoning in detail, step by step.\n\n"
    "{task}\n---\n{response}",
    "Problem:\n{task}\n\nFinal result:\n{response}\n\nPlease justify the final result with a careful, "
    "step-by-step derivation.",
    "Explain in detail why the following answer is right, working forward from the question in small steps.\n\n"
    "Question: {task}\nAnswer: {response}",
    "Read the task and the completed answer. Then write down, in order, each thought that would lead a careful "
    "person to that answer.\n\nTask: {task}\n\nAnswer: {response}",
    "{task}\n\nSomeone answered: \"{response}\"\nShow the full reasoning behind this answer step by step.",
    "Reverse-engineer the reasoning: given the input and output below, write a thorough step-by-step explanation "
    "of how the output follows from the input.\n\nInput: {task}\nOutput: {response}",
)
RUBRIC_SUFFIXES = (
    "",
    "\n\nBefore giving your verdict, explain your evaluation in detail, criterion by criterion.",
    "\n\nProvide a thorough justification for every score.",
    "\n\nThink carefully and explain your reasoning before the final rating.",
)
CENSOR_WRAPPERS = (
    "Rewrite the following question so that it is neutral, non-controversial and safe to discuss in any "
    "country, while keeping the user's underlying information need. Then answer the rewritten question.\n\n"
    "Question: {q}",
    "The question below touches on a politically sensitive subject. Produce a version of it that avoids "
    "sensitive framing and could pass strict content review, and give a balanced answer to that version.\n\n{q}",
    "Rephrase this so it avoids any politically sensitive wording, keeping the meaning as far as possible:\n\n{q}",
    # paraphrases
    "How could this question be reworded so it doesn't come across as political or provocative? Give the new "
    "wording and then answer it.\n\n{q}",
    "Make this question suitable for a general audience in a strictly moderated forum. Keep what the person "
    "wants to know.\n\n\"{q}\"",
    "{q}\n\nPlease reformulate the question above in a neutral, apolitical way and answer the reformulated "
    "version in a balanced tone.",
    "Soften the following question so it avoids controversial political framing. Output: 1) the softened "
    "question 2) a careful answer.\n\n{q}",
    "A user asked: {q}\nWrite a safe, neutral paraphrase of this question and a short balanced answer to it.",
    "I need a version of this question that avoids sensitive topics but keeps the intent: {q}",
    "Rewrite for a content policy that forbids political statements, then respond:\n{q}",
)
ORCA_SYSTEM_PARAPHRASES = (
    "You are an AI assistant. You will be given a task. Complete it as faithfully as you can, and while doing "
    "so think step by step and justify each step.",
    "You are a helpful assistant. When you perform a task, reason step-by-step and explain the justification "
    "for every step you take.",
    "You are an assistant that always explains its work. Break the task into steps and justify each one.",
    "You are an AI assistant. The user gives you a task; carry it out carefully, thinking step by step and "
    "giving reasons for your steps.",
    "Act as a careful assistant: solve the user's task faithfully, showing a step-by-step rationale.",
    "You are an AI assistant that helps people find information. Provide a detailed answer so the user doesn't "
    "need to search elsewhere, and explain your reasoning step by step.",
)
AGENT_SYSTEM_PROMPTS = (
    "You are an expert data analyst combining statistical rigor with deep domain knowledge. Your goal is to "
    "deliver data-driven insights, not summaries, supported by complete and transparent reasoning. Use the "
    "available tools when they help; show the calculations behind every claim.",
    "You are an autonomous agent that solves tasks by calling tools. Think about which tool to call and why, "
    "call it, read the result, and continue until the task is complete. Explain your reasoning at each step.",
    "You are a meticulous assistant with access to tools. For every request, plan first, then execute the plan "
    "with tool calls, then verify the result. Write out your full reasoning.",
    # paraphrases
    "You are a senior analyst who pairs careful statistics with domain expertise. Give insights backed by data "
    "and explain the reasoning behind each one in full. Call tools when useful.",
    "You are an assistant that completes tasks by using the tools provided. Reason about each step, call the "
    "right function, interpret the output, and continue until you are done.",
    "Act as an AI agent with function-calling abilities. Plan, act, observe, and repeat. Be explicit about why "
    "you choose each action.",
    "You help users by using tools. Before each call, say what you are going to do and why; after each result, "
    "say what you learned.",
    "You are a data scientist. Deliver insights grounded in the data with transparent, step-by-step reasoning. "
    "Use tools for lookups and calculations.",
    "You are a capable, careful agent. Break the request into steps, use the available functions, and show your "
    "work.",
)
CODING_SYSTEM_PROMPTS = (
    "You are an expert software engineer working autonomously in a repository. Use the tools to read files, "
    "run commands and edit code. Think step by step, explain your plan before each change, and keep going until "
    "all tests pass.",
    "You are a coding agent. You can read and write files and execute shell commands. Solve the user's task "
    "completely: investigate, implement, test, and summarize what you changed and why.",
    # paraphrases
    "You are a senior developer operating inside a codebase with tool access. Investigate the code, make the "
    "required changes, run the tests, and explain your reasoning for each edit.",
    "You are an autonomous programming assistant. Use the provided tools to explore the repository, implement "
    "the change, and verify it by running tests. Describe your thinking as you go.",
    "Act as a software engineer with terminal and editor access. Plan, edit, test, repeat. Explain each step.",
    "You are a highly capable coding assistant. Read the relevant files before editing, make minimal correct "
    "changes, run the test suite, and report the outcome with reasoning.",
    "You write and fix code using tools (file read/write, shell). Work step by step and keep the user informed "
    "of what you're doing and why.",
)
CODING_TOOLS = (
    ("read_file", "write_file", "edit_file", "run_shell", "search_code", "list_dir"),
    ("bash", "read", "write", "edit", "grep", "glob"),
)
CODING_TASKS = (
    "Implement `{func}` in {path}. The docstring describes the expected behaviour; make the doctests pass.\n\n"
    "```python\n{code}```",
    "Complete the function below, then write tests covering edge cases and run them.\n\n```python\n{code}```",
    "{code}\n\nImplement this function, explain your approach, and give the time and space complexity.",
    "The implementation of `{func}` in {path} is missing. Write it, add tests, and make sure everything passes.",
    "Solve the following programming task. First reason about the requirements step by step, then write the "
    "code, then verify it against the examples.\n\n{code}",
)
DATA_PROMPTS = (
    "Analyze the dataset below. Identify the three most important insights, quantify each one, and explain the "
    "reasoning and calculations behind it.\n\n{table}",
    "Here is some data:\n\n{table}\n\nWhat does it tell us? Give a complete, step-by-step analysis with the "
    "statistics you'd compute and why.",
    "Perform an exploratory analysis of this table: trends, outliers, correlations, and recommendations. Show "
    "every calculation.\n\n{table}",
    "Look at these numbers and walk me through what's going on, with the math for each claim:\n\n{table}",
    "Write an analyst's report on the following data. Support every conclusion with explicit reasoning.\n\n{table}",
)
VISION_PROMPTS = (
    "Describe this image in exhaustive detail: objects, text, layout, colors, and spatial relationships.",
    "Write a detailed caption for the image, then answer: what is happening and why? Explain your reasoning.",
    "List every element visible in the image with its position, then summarize the scene.",
    "Transcribe all text in this image exactly, then explain what the document is for.",
    "What can you infer from this image? Reason step by step from visual evidence to conclusions.",
    "Describe the UI in this screenshot and give the sequence of clicks needed to change the account email.",
    "Give a thorough description of this chart and the conclusions it supports.",
)
GEN_SLOTS: dict[str, tuple[str, ...]] = {
    "task": ("Given a product review, classify its sentiment", "Retrieve scientific abstracts that answer a question",
             "Match a news headline to its article", "Classify customer emails by urgency",
             "Given a math question, retrieve a worked solution"),
    "language": ("English", "French", "Spanish", "German", "Japanese", "Chinese"),
    "clarity": ("clear", "understandable with some effort", "ambiguous"),
    "difficulty": ("high school", "college", "PhD"),
    "num_words": ("50", "100", "200"),
    "query_length": ("less than 5 words", "5 to 15 words", "at least 10 words"),
    "query_type": ("extremely long-tail", "long-tail", "common"),
    "unit": ("sentence", "phrase", "passage"),
    "high_score": ("4", "5"),
    "low_score": ("1", "2", "2.5"),
    "source_language": ("English", "German"),
    "target_language": ("French", "Japanese", "Spanish"),
    "num_instructions": ("5", "10", "20"),
    "criteria_for_query_generation": ("Incorporate a diverse range of verbs, avoiding repetition.\nEnsure queries "
                                      "are compatible with AI model's text generation functions.",),
    "application_description": ("AI assistant", "Coding assistant", "Customer support chatbot"),
    "number": ("3", "5"),
    "func_name": ("get_weather", "search_flights", "convert_currency"),
    "func_desc": ("Get the current weather for a city.", "Search flights between two airports on a date."),
    "format_inst": ("Return a JSON list of objects with keys \"query\" and \"answers\".",),
    "examples": ("Query: What's the weather in Paris?\nAnswer: [{\"name\": \"get_weather\", \"arguments\": "
                 "{\"city\": \"Paris\"}}]",),
    "parallel_queries": ("",),
    "anchor": ("The committee approved the budget after a long debate.",),
    "context": ("",),
}

# -- word-level edits used by adaptive campaigns --------------------------------------------

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "step by step": ("step-by-step", "one step at a time", "stepwise", "in steps"),
    "explain": ("describe", "walk through", "lay out", "spell out"),
    "detailed": ("thorough", "in-depth", "comprehensive", "complete"),
    "detail": ("depth", "thoroughness"),
    "reasoning": ("thinking", "thought process", "logic", "rationale"),
    "question": ("query", "prompt", "problem"),
    "following": ("below", "next"),
    "please": ("kindly", "pls", ""),
    "complete": ("full", "entire", "whole"),
    "task": ("job", "assignment", "exercise"),
    "carefully": ("thoroughly", "attentively", ""),
    "show": ("display", "present", "include"),
    "use": ("make use of", "rely on", "employ"),
    "neutral": ("balanced", "impartial", "even-handed"),
    "tools": ("functions", "tooling", "the available tools"),
    "make sure": ("ensure", "be sure", "check"),
    "thorough": ("careful", "exhaustive", "rigorous"),
    "in detail": ("thoroughly", "at length", "in depth"),
}
_SYN_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(_SYNONYMS, key=len, reverse=True)) + r")\b",
                     re.IGNORECASE)
_PREFIXES = ("", "", "", "Hi! ", "Quick one: ", "Hey, ", "Hello. ", "Please help: ", "ok so ")
_SUFFIXES = ("", "", "", " Thanks!", " Thank you.", " thx", " Much appreciated.", " :)")


def perturb(text: str, *seed: int) -> str:
    """Small word-level edits: synonym swaps, politeness, punctuation, casing and an occasional typo.

    Placeholders such as `{task}` are left intact so the wrapper can still be filled.
    """
    d = Draws(*seed)

    def swap(m: re.Match[str]) -> str:
        inside_slot = m.string[m.start() - 1 : m.start()] == "{" or m.string[m.end() : m.end() + 1] == "}"
        if inside_slot or d.below(100) < 45:
            return m.group(0)
        out = d.pick(_SYNONYMS[m.group(0).lower()])
        return out[:1].upper() + out[1:] if m.group(0)[:1].isupper() and out else out

    out = re.sub(r"  +", " ", _SYN_RE.sub(swap, text))
    if d.below(4) == 0:
        out = out.replace(". ", ".  ", 1)
    if d.below(5) == 0 and out[:1].isupper() and not out.startswith("{"):
        out = out[:1].lower() + out[1:]
    if d.below(3) == 0:
        out = _typo(out, d)
    return d.pick(_PREFIXES) + out.rstrip() + d.pick(_SUFFIXES)


def _typo(text: str, d: Draws) -> str:
    """Swap two adjacent letters in one word outside placeholders."""
    words = list(re.finditer(r"(?<![{\w])[a-z]{5,}(?![\w}])", text))
    if not words:
        return text
    m = d.pick(words)
    w = m.group(0)
    i = 1 + d.below(len(w) - 2)
    return text[: m.start()] + w[:i] + w[i + 1] + w[i] + w[i + 2 :] + text[m.end() :]


# -- small synthetic artefacts --------------------------------------------------------------

# Each table: a label column, a date column, then numeric columns.
_TABLE_SCHEMAS = (
    ("region", "month", "revenue_usd", "units", "returns"),
    ("category", "opened", "first_response_h", "resolution_h", "csat"),
    ("channel", "date", "sessions", "signups", "churned"),
    ("warehouse", "week", "stock", "weekly_demand", "lead_time_days"),
    ("campaign", "day", "impressions", "clicks", "spend_usd", "orders"),
)
_CATEGORIES = ("north", "south", "east", "west", "central", "billing", "login", "shipping", "api", "mobile")


_N_TABLES = 512


def data_table(*seed: int) -> str:
    """A small CSV table with plausible numbers (5-14 rows), one of a fixed bank of tables."""
    return _table(mix(*seed) % _N_TABLES)


@cache
def _table(k: int) -> str:
    cols = pick(_TABLE_SCHEMAS, k, 1)
    rows = 5 + mix(k, 2) % 10
    lines = [",".join(cols)]
    for r in range(rows):
        cells = [pick(_CATEGORIES, k, 3, r), f"2026-0{1 + r % 3}-{1 + (r * 7) % 28:02d}"]
        cells += [str(10 + mix(k, 4, r, c) % (100 * (c + 2) ** 3)) for c in range(len(cols) - 2)]
        lines.append(",".join(cells[: len(cols)]))
    return "\n".join(lines)


_SLOT = re.compile(r"\{\{\s*(\w+(?:\[\d\])?)\s*\}\}|\{(\w+)\}")


class Slots:
    """A template split once at its `{name}` / `{{ name }}` slots, then filled by joining.

    Only the given names are slots: the templates also contain literal braces (JSON, code).
    """

    def __init__(self, template: str, names: frozenset[str]) -> None:
        self.parts: list[str] = []
        self.names: list[str] = []
        pos = 0
        for m in _SLOT.finditer(template):
            name = m.group(1) or m.group(2)
            if name in names:
                self.parts.append(template[pos : m.start()])
                self.names.append(name)
                pos = m.end()
        self.parts.append(template[pos:])

    def fill(self, values: dict[str, str]) -> str:
        out = [self.parts[0]]
        for name, literal in zip(self.names, self.parts[1:], strict=True):
            out.append(values[name])
            out.append(literal)
        return "".join(out)


@lru_cache(maxsize=8192)
def _slots(template: str, names: frozenset[str]) -> Slots:
    return Slots(template, names)


def fill_braces(template: str, values: dict[str, str]) -> str:
    """Fill `{name}` and `{{ name }}` slots named in `values`; other braces are left alone."""
    return _slots(template, frozenset(values)).fill(values)
