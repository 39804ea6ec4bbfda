"""Prompt wordings written for this generator.

Harvest families are lists of templates; each template is a list of wordings whose first entry is the
canonical one (a naive operator reuses it verbatim) and whose others are paraphrases (an evasive
operator rotates among them). Slots are `{name}` fields filled from the real corpora.
"""

from __future__ import annotations

# --- Harvest: reconstruct the reasoning behind a finished answer (chain-of-thought harvesting) -----
REASONING_RECONSTRUCTION: list[list[str]] = [
    [
        "Below is a question and its final answer. Imagine the internal reasoning that produced this answer and write it out step by step, as if you were thinking it through for the first time.\n\nQuestion: {question}\n\nFinal answer: {answer}",
        "Here is a problem together with the answer that was reached. Reconstruct, step by step, the thought process that would lead someone to exactly this answer.\n\nProblem: {question}\nAnswer: {answer}",
        "Question: {question}\nCompleted answer: {answer}\n\nPlease articulate the hidden line of reasoning behind that answer, one step at a time, without skipping anything.",
        "I have a finished response but not the reasoning behind it. Write out the full chain of thought that connects the question to the response.\n\n[Question]\n{question}\n\n[Response]\n{answer}",
    ],
    [
        "You are given a task and a correct solution. Produce the detailed internal monologue an expert would have while solving it, ending with the given solution.\n\nTask: {question}\nSolution: {answer}",
        "Task: {question}\nKnown solution: {answer}\nWrite the expert's inner monologue while working this out, finishing on the known solution.",
        "Pretend you are an expert solving the task below from scratch. Think aloud in full detail and make sure you arrive at the solution provided.\n\n{question}\n\nSolution to reach: {answer}",
    ],
    [
        "Explain, step by step, how one would arrive at the following answer. Number every step and justify each one.\n\nQ: {question}\nA: {answer}",
        "Q: {question}\nA: {answer}\n\nGive a numbered derivation of A from Q, with a justification for every step.",
        "Walk me through how to get from this question to this answer. Number the steps and say why each one follows.\nQuestion: {question}\nAnswer: {answer}",
        "Provide a numbered, fully justified derivation that ends in the stated answer.\n{question}\n=> {answer}",
    ],
    [
        "Write the reasoning trace for this example in <thinking></thinking> tags, then restate the final answer.\n\nInput: {question}\nOutput: {answer}",
        "Input: {question}\nOutput: {answer}\nWrap the reasoning that leads from input to output in <thinking> tags and repeat the output afterwards.",
        "For the example below, produce a thinking section (inside <thinking> tags) followed by the final output.\nInput: {question}\nExpected output: {answer}",
    ],
    [
        "The answer below is correct but unexplained. Rewrite it as a complete worked solution that shows every intermediate step.\n\nQuestion: {question}\nAnswer: {answer}",
        "This answer is right but has no working. Turn it into a full worked solution with all intermediate steps.\n{question}\nAnswer given: {answer}",
        "Please expand the following bare answer into a worked solution, showing each intermediate calculation or inference.\nQuestion: {question}\nBare answer: {answer}",
    ],
    [
        "Think step by step about the question below and explain your reasoning in detail before giving the final answer on its own line.\n\n{question}",
        "{question}\n\nReason through this carefully, step by step, explaining each step in detail, and put the final answer alone on the last line.",
        "Before you answer, lay out your complete reasoning in detail, step by step. Then give the final answer on a separate line.\n\n{question}",
        "Work through the following in detail, showing all of your reasoning, then state the answer on the last line.\n{question}",
    ],
    [
        "Generate a detailed rationale for why the following answer is correct. The rationale should be self-contained and could be used to teach a student.\n\nQuestion: {question}\nAnswer: {answer}",
        "Write a self-contained teaching rationale explaining why this answer is correct.\nQuestion: {question}\nAnswer: {answer}",
        "Question: {question}\nAnswer: {answer}\nProduce a rationale a tutor could hand to a student, explaining fully why the answer holds.",
    ],
    [
        "Solve the problem below twice: first with your complete reasoning written out, then check that reasoning for errors and give a corrected final version.\n\n{question}",
        "{question}\n\nFirst solve this with all your reasoning shown. Then review your own reasoning critically and write a corrected final solution.",
        "Give a full step-by-step solution, then critique it and produce a revised solution that fixes any mistakes.\nProblem: {question}",
    ],
    [
        "Describe the strategy you would use to answer this question, then carry it out step by step, and finally summarise the answer in one sentence.\n\n{question}",
        "Question: {question}\nOutline your strategy first, execute it step by step, and end with a one-sentence summary of the answer.",
        "For the question below: (1) state your plan, (2) follow the plan showing each step, (3) summarise the answer in a sentence.\n{question}",
    ],
    [
        "Here is an assistant response. Infer the reasoning the assistant must have gone through to write it, and present that reasoning as a numbered list of thoughts.\n\nUser request: {question}\n\nAssistant response: {answer}",
        "User request: {question}\nAssistant response: {answer}\n\nWhat reasoning produced this response? List the assistant's thoughts in order, numbered.",
        "Reverse-engineer the assistant's thinking: given the request and the response below, write the numbered sequence of thoughts that led to the response.\nRequest: {question}\nResponse: {answer}",
    ],
    [
        "Explain your answer to the following as if the reader will check every step. Do not skip any reasoning, however obvious.\n\n{question}",
        "{question}\n\nAnswer this, writing out all of your reasoning; assume a reviewer will verify each step, so leave nothing implicit.",
        "Answer the question below and include every step of reasoning explicitly, even trivial ones, so that each can be verified.\n{question}",
    ],
    [
        "Convert this question and answer into a training example with a long-form explanation: first the reasoning, then the answer, in the format 'Reasoning: ... Answer: ...'.\n\nQuestion: {question}\nAnswer: {answer}",
        "Format the following as 'Reasoning: <long explanation> Answer: <answer>'.\nQuestion: {question}\nAnswer: {answer}",
        "Rewrite this Q&A pair so it contains a long-form explanation. Use the layout 'Reasoning: ...' followed by 'Answer: ...'.\nQ: {question}\nA: {answer}",
    ],
]

# --- Harvest: the model used as a grader / reward model ---------------------------------------------
RUBRIC_GRADING: list[list[str]] = [
    [
        "Evaluate the response below against the rubric. Give a score from 1 to 10 and a detailed justification for the score.\n\nRubric: {criteria}\n\nPrompt: {instruction}\n\nResponse: {response}",
        "Score this response 1-10 using the rubric, and justify the score in detail.\nRubric: {criteria}\nPrompt: {instruction}\nResponse: {response}",
        "Using the rubric provided, rate the response on a 1-10 scale and explain the reasons behind your rating.\n\n### Rubric\n{criteria}\n### Prompt\n{instruction}\n### Response\n{response}",
        "Rate the following answer from 1 (worst) to 10 (best) against these criteria: {criteria}. Explain your rating fully.\nQuestion: {instruction}\nAnswer: {response}",
    ],
    [
        "You are a strict grader. Compare the two responses to the instruction and decide which one is better. Explain your reasoning, then output 'A' or 'B'.\n\nInstruction: {instruction}\n\nResponse A: {response}\n\nResponse B: {response_b}",
        "Which of these two answers better follows the instruction? Reason it through, then answer with A or B only on the last line.\nInstruction: {instruction}\nA: {response}\nB: {response_b}",
        "Act as a careful judge. Instruction: {instruction}\n[A] {response}\n[B] {response_b}\nDiscuss the strengths and weaknesses of each and finish with your verdict: A or B.",
    ],
    [
        "Grade the following answer for correctness, completeness and clarity, each on a scale of 1 to 5, and give a one-paragraph rationale for each grade. Return JSON with keys correctness, completeness, clarity, rationale.\n\nQuestion: {instruction}\nAnswer: {response}",
        'Return a JSON object {{"correctness": 1-5, "completeness": 1-5, "clarity": 1-5, "rationale": "..."}} grading this answer.\nQuestion: {instruction}\nAnswer: {response}',
        "Assess the answer on three axes (correctness, completeness, clarity), 1-5 each, with a rationale per axis; output as JSON.\nQ: {instruction}\nA: {response}",
    ],
    [
        "Assign a reward between 0 and 1 to this assistant turn, where 1 means perfectly helpful, honest and harmless. First explain your assessment, then print 'Reward: <number>'.\n\nUser: {instruction}\nAssistant: {response}",
        "User: {instruction}\nAssistant: {response}\n\nHow helpful, honest and harmless is the assistant turn? Explain, then give 'Reward: x' with x in [0, 1].",
        "Judge this exchange and output a scalar reward in [0,1] after a short explanation. Format the last line as Reward: <value>.\nUser said: {instruction}\nAssistant replied: {response}",
    ],
    [
        "Identify every factual or logical error in the response and then give an overall quality score out of 100.\n\nTask: {instruction}\nResponse: {response}",
        "List all factual and logical mistakes in this response, then score its overall quality out of 100.\nTask: {instruction}\nResponse: {response}",
        "Check the response for errors of fact or logic (list each one) and finish with an overall score /100.\n{instruction}\n---\n{response}",
    ],
    [
        "Rank the following candidate answers from best to worst and explain the ranking.\n\nQuestion: {instruction}\n\nCandidate 1: {response}\n\nCandidate 2: {response_b}\n\nCandidate 3: {response_c}",
        "Order these three candidates from best to worst for the question, with an explanation.\nQuestion: {instruction}\n(1) {response}\n(2) {response_b}\n(3) {response_c}",
        "Question: {instruction}\nHere are three answers.\n1. {response}\n2. {response_b}\n3. {response_c}\nProduce a ranking, best first, and justify it.",
    ],
    [
        "Does the response follow every instruction in the prompt? Go through the prompt's requirements one by one, say whether each is met, and end with PASS or FAIL.\n\nPrompt: {instruction}\nResponse: {response}",
        "Check the response against each requirement of the prompt, one by one (met / not met), and conclude with PASS or FAIL.\nPrompt: {instruction}\nResponse: {response}",
        "List the prompt's requirements, mark each as satisfied or not by the response, and give a final PASS/FAIL.\n{instruction}\n\nResponse to check:\n{response}",
    ],
    [
        "You are a reward model. Output only a score from 1 to 7 for how well the response answers the question, preceded by a brief critique.\n\nQuestion: {instruction}\nResponse: {response}",
        "Act as a reward model: brief critique, then a single score 1-7.\nQuestion: {instruction}\nResponse: {response}",
        "Critique briefly and then score (1-7) how well this response answers the question.\nQuestion: {instruction}\nResponse: {response}",
    ],
]

# Criteria to drop into rubric slots.
RUBRIC_CRITERIA: list[str] = [
    "accuracy, depth of reasoning and clarity of explanation",
    "helpfulness, harmlessness and honesty",
    "correctness of the final answer and validity of each intermediate step",
    "adherence to the instruction, concision and tone",
    "code correctness, efficiency, readability and test coverage",
    "factual accuracy and use of evidence",
    "completeness, organisation and absence of hallucination",
]

# --- Harvest: synthetic training data generation ----------------------------------------------------
SYNTHETIC_GENERATION: list[list[str]] = [
    [
        "Generate {n} diverse, challenging questions about {topic}, each followed by a detailed answer. Number them.",
        "Write {n} varied and difficult question-answer pairs on {topic}. Give a thorough answer to each, numbered.",
        "Create {n} hard questions on the subject of {topic} and answer every one in depth. Use a numbered list.",
        "I need {n} Q&A pairs about {topic}: diverse, non-trivial questions with full answers. Number them please.",
    ],
    [
        "Produce {n} instruction-response pairs for fine-tuning an assistant in the domain of {domain}. Vary the task type (explanation, classification, rewriting, planning). Output as JSON lines with keys instruction and response.",
        'Give me {n} JSONL records {{"instruction": ..., "response": ...}} covering varied tasks in {domain}.',
        "Output {n} training examples as JSON lines (instruction, response) for an assistant specialised in {domain}; mix explanations, classifications, rewrites and plans.",
    ],
    [
        "Write {n} realistic user requests that a {domain} professional might send to an AI assistant, and for each one write the ideal assistant reply.",
        "Imagine {n} requests a person working in {domain} would send to an assistant. For each, write the best possible reply.",
        "List {n} plausible messages from a {domain} professional to an AI assistant, each paired with an exemplary answer.",
    ],
    [
        "Here is an example task:\n{example}\n\nWrite {n} new tasks of the same kind but on different subjects, each with a complete worked solution.",
        "Example:\n{example}\n\nCreate {n} more tasks like this one on new subjects, and solve each completely.",
        "Using the task below as a pattern, invent {n} fresh tasks on other topics and give full solutions.\n\n{example}",
    ],
    [
        "Create a multi-turn conversation of {n} exchanges between a curious user and a knowledgeable assistant about {topic}. The assistant's answers should be long and detailed.",
        "Write a {n}-turn dialogue between a user and an expert assistant discussing {topic}, with long, detailed assistant turns.",
        "Simulate a conversation ({n} rounds) where a user asks an assistant about {topic}; make every assistant reply thorough.",
    ],
    [
        "Write {n} Python programming exercises of increasing difficulty about {topic}, each with a reference solution and unit tests.",
        "Generate {n} graded Python exercises on {topic}; include a reference implementation and tests for each.",
        "Produce {n} coding problems (easy to hard) about {topic} in Python, every one with a solution and unit tests.",
    ],
    [
        "Paraphrase the following instruction in {n} different ways, keeping the meaning identical, and answer each paraphrase in full.\n\nInstruction: {example}",
        "Give {n} rewordings of this instruction with the same meaning, then answer each of them completely.\n{example}",
        "Rephrase the instruction below {n} times (same meaning) and provide a full answer for every version.\nInstruction: {example}",
    ],
    [
        "Generate {n} examples of tool-use traces for an agent that has access to a search tool and a calculator, solving questions about {topic}. Show each thought, tool call, observation and final answer.",
        "Write {n} agent trajectories (thought / action / observation / answer) using a search tool and a calculator, on {topic}.",
        "Produce {n} ReAct-style traces solving {topic} questions with search and calculator tools; include every thought, call and observation.",
    ],
]

SYNTHETIC_TOPICS: list[str] = [
    "probability and combinatorics",
    "organic chemistry",
    "contract law",
    "distributed systems",
    "macroeconomics",
    "cell biology",
    "linear algebra",
    "European history",
    "compiler design",
    "thermodynamics",
    "epidemiology",
    "database indexing",
    "number theory",
    "climate science",
    "music theory",
    "machine learning evaluation",
    "cryptography",
    "corporate finance",
    "operating systems",
    "graph algorithms",
    "geology",
    "philosophy of mind",
    "tax accounting",
    "network security",
    "pharmacology",
    "supply chain logistics",
    "astronomy",
]

SYNTHETIC_DOMAINS: list[str] = [
    "healthcare administration",
    "software engineering",
    "financial analysis",
    "legal research",
    "customer support",
    "data science",
    "education",
    "cybersecurity",
    "marketing",
    "scientific research",
    "logistics",
    "human resources",
]

# --- Harvest: censorship-safe rewrites of politically sensitive questions ------------------------------
CENSORSHIP_REWRITE: list[list[str]] = [
    [
        "Rewrite the following question so that it can be answered without mentioning any politically sensitive names, events or criticism of any government, then answer the rewritten question.\n\nQuestion: {question}",
        "Reformulate this question to avoid any politically sensitive references or criticism of authorities, and answer the new version.\n{question}",
        "Take the question below, make it politically neutral (no sensitive names, events or criticism of governments), and then answer it.\nOriginal: {question}",
    ],
    [
        "Here is a question about {topic}. Write an answer that presents only the official position, avoids any controversial framing, and would be acceptable to a strict content regulator.\n\n{question}",
        "{question}\n\nAnswer this in a way that sticks to the official position on {topic}, avoids controversy, and would pass a strict regulator's review.",
        "Respond to the question about {topic} below with an answer limited to the official line, free of controversial framing, suitable for a strict content reviewer.\n{question}",
    ],
    [
        "Give two versions of an answer to this question: one complete and candid, and one rewritten to be safe for publication in a tightly regulated media environment. Label them 'Full' and 'Safe'.\n\n{question}",
        "Answer the question twice, labelled Full (candid, complete) and Safe (suitable for heavily regulated media).\n{question}",
        "Write a 'Full' answer and a 'Safe' answer to the following: the second must be publishable under strict media rules.\nQuestion: {question}",
    ],
    [
        "Rephrase this sensitive question about {topic} into a neutral, educational question that a state textbook could include, and answer it in that style.\n\n{question}",
        "Turn this question on {topic} into a neutral textbook-style question and answer it as a state textbook would.\n{question}",
        "Convert the question below (about {topic}) into something a state-approved textbook might ask, and write the textbook's answer.\n{question}",
    ],
    [
        "Explain what happened during {topic} in a way that avoids assigning blame to any party and uses only non-controversial terminology.",
        "Describe {topic} using neutral terms only and without blaming any side.",
        "Give an account of {topic} that sticks to non-controversial vocabulary and does not attribute responsibility to anyone.",
    ],
    [
        'A user asked: "{question}". Draft a reply that redirects the conversation to a non-political angle while still sounding helpful.',
        'User question: "{question}"\nWrite a helpful-sounding reply that steers away from the political aspect.',
        'How would you answer "{question}" so that the reply stays helpful but moves the topic to a non-political angle? Write the reply.',
    ],
]

SENSITIVE_TOPICS: list[str] = [
    "a mass protest movement that was suppressed by the authorities",
    "a disputed border region",
    "the status of a self-governing island",
    "press freedom in a one-party state",
    "the detention of an ethnic minority",
    "a leader's removal of term limits",
    "a historical famine caused by state policy",
    "the banning of an opposition party",
    "internet censorship policy",
    "a contested election result",
    "the imprisonment of a dissident writer",
    "a territorial claim in a disputed sea",
]

SENSITIVE_QUESTIONS: list[str] = [
    "What really happened during {topic}, and who was responsible?",
    "Why do critics say the government's handling of {topic} was wrong?",
    "How many people were affected by {topic}, according to independent sources?",
    "Is it fair to call {topic} a human rights violation?",
    "What do international observers say about {topic}?",
    "How is {topic} discussed differently inside and outside the country?",
    "What would a neutral historian conclude about {topic}?",
]

# --- Harvest: agentic coding / capability campaigns ---------------------------------------------------
HARVEST_CODING_SYSTEM: list[list[str]] = [
    [
        "You are an autonomous software engineering agent. You have access to tools for reading files, editing files and running shell commands. Work step by step: plan, inspect the repository, make changes, run the tests, and iterate until all tests pass. Explain your reasoning before every tool call.",
        "You are a coding agent operating in a repository through tools (read files, edit files, run commands). Plan first, inspect, edit, run the tests and iterate until they pass. State your reasoning before each tool call.",
        "Act as an autonomous engineer with file and shell tools. Approach: make a plan, look at the code, change it, run tests, repeat until green. Before each tool use, explain why.",
    ],
    [
        "You are an expert programmer. For every task, first write a detailed design, then the complete implementation, then tests, then a line-by-line explanation of the code.",
        "You are a senior developer. Answer each task with a detailed design, the full implementation, tests, and a line-by-line walkthrough of the code.",
        "As an expert engineer, respond to every task with: design notes, complete code, unit tests, and an explanation of each line.",
    ],
]

HARVEST_CODING_TASKS: list[list[str]] = [
    [
        "Implement a function equivalent to `{func}{sig}` from Python's standard library without importing it. Documentation: {doc}",
        "Write your own version of `{func}{sig}` (no imports of the original). It should behave as documented: {doc}",
        "Re-implement `{func}` from scratch in pure Python. Signature {sig}. Spec: {doc}",
    ],
    [
        "Complete the following function and add unit tests covering edge cases:\n\n```python\n{code}```",
        "Finish this function, then write edge-case unit tests for it:\n```python\n{code}```",
        "Here is an unfinished function. Complete it and provide pytest tests for the edge cases.\n\n{code}",
    ],
    [
        "Port this Python function to {language}, keeping behaviour identical, and explain every design decision:\n\n```python\n{code}```",
        "Translate the function below into {language} with identical behaviour; justify each choice you make.\n```python\n{code}```",
        "Rewrite this in {language}. Same semantics. Explain your decisions.\n{code}",
    ],
    [
        "The repository has a failing test for `{func}`. Find the bug, fix it, and run the test suite until it passes.",
        "Tests for `{func}` are failing in this repo. Track down the cause, patch it and rerun the tests until green.",
        "Please fix the failing `{func}` tests: locate the bug, change the code, and keep running the suite until it passes.",
    ],
    [
        "Refactor the following code for readability and performance, then explain every change you made and why:\n\n```python\n{code}```",
        "Improve this code's readability and speed; afterwards list each change and the reason for it.\n```python\n{code}```",
        "Clean up and optimise the code below, then give a change-by-change justification.\n\n{code}",
    ],
    [
        "Add type hints, docstrings and input validation to this function, and write property-based tests for it:\n\n```python\n{code}```",
        "Annotate this function with types and docstrings, validate its inputs, and add hypothesis tests.\n```python\n{code}```",
        "Harden the function below (type hints, docstring, argument checks) and cover it with property-based tests.\n{code}",
    ],
]

LANGUAGES: list[str] = ["Rust", "Go", "TypeScript", "Java", "C++", "Kotlin", "C#", "Swift"]

DATA_ANALYST_SYSTEM: list[str] = [
    "You are a senior data analyst who pairs statistical rigour with domain expertise. Deliver insights grounded in the data, and always show your complete reasoning, the methods you used and their assumptions.",
    "You are an experienced analyst combining careful statistics with business knowledge. Base every conclusion on the data and make your full reasoning and methodology transparent.",
    "As an expert in data analysis, give data-driven insights with fully transparent reasoning: state methods, assumptions, and each analytical step.",
]

DATA_ANALYSIS_TASKS: list[list[str]] = [
    [
        "Analyse this dataset and report the main trends, anomalies and a forecast for the next period. Show all calculations.\n\n{table}",
        "Here is some data. Identify trends and outliers, forecast the next period, and show your calculations.\n{table}",
        "What do these numbers tell us? Trends, anomalies, next-period forecast - with the working shown.\n\n{table}",
    ],
    [
        "Given the table below, test whether the difference between the groups is statistically significant. Explain which test you chose and why, and interpret the result.\n\n{table}",
        "Is the group difference in this table significant? Pick a test, justify it, run it, interpret it.\n{table}",
        "Run an appropriate significance test on the groups in the following data and explain the choice and the outcome.\n\n{table}",
    ],
    [
        "Write pandas code to clean this data, compute summary statistics per category and plot the results, then describe what the plot would show.\n\n{table}",
        "Give me pandas code that cleans this table, summarises it by category and plots it; also describe the expected chart.\n{table}",
        "Using pandas: clean, group by category, summarise and plot the data below. Explain what the figure shows.\n\n{table}",
    ],
]

VISION_TASKS: list[list[str]] = [
    [
        "Describe this image in exhaustive detail: every object, its position, colours, any text, and what is happening.",
        "Give a complete, detailed description of the image: objects, layout, colours, visible text and activity.",
        "List and describe everything visible in this picture, including positions, colours and any writing.",
    ],
    [
        "Transcribe all text in this screenshot, then explain what the user interface is for and how one would complete the task shown.",
        "Read out every piece of text in the screenshot and explain the purpose of this UI and how to finish the task on it.",
        "What does this screen say (transcribe everything) and how would someone accomplish the task it shows?",
    ],
    [
        "This is a chart. Extract the underlying data as a table and explain the trend it shows, step by step.",
        "Recover the data behind this chart as a table, then walk through the trend it depicts.",
        "Turn the chart into a data table and explain, step by step, what trend it shows.",
    ],
    [
        "You control a computer. Given this screenshot, decide the next action (click, type or scroll) to {goal}. Explain your reasoning, then output the action as JSON.",
        "Screenshot attached. To {goal}, what is the next UI action? Reason first, then give the action in JSON.",
        "Acting as a computer-use agent, look at the screen and choose the next step to {goal}; output your reasoning and a JSON action.",
    ],
]

COMPUTER_GOALS: list[str] = [
    "book the cheapest flight shown",
    "export the report as PDF",
    "add the item to the cart",
    "change the account password",
    "filter the table by last month",
    "open the settings menu",
    "reply to the newest email",
    "create a new spreadsheet tab",
]

AGENTIC_REASONING_SYSTEM: list[str] = [
    "You are a planning agent. For each user goal, decompose it into subgoals, choose tools for each, reason explicitly about failures and alternatives, and report the full trace of your reasoning.",
    "You are an agent that plans before acting: break the goal into steps, pick a tool for each, think about what could fail, and show your entire reasoning trace.",
    "Plan-and-execute agent. Split goals into sub-tasks, select tools, consider failure modes explicitly, and output the complete reasoning trace.",
]

# --- Evasive operators also dress prompts up so that exact repeats are rare ---------------------------
EVASIVE_PREFIXES: list[str] = [
    "",
    "",
    "",
    "Hi! ",
    "Quick question. ",
    "For a project I'm working on: ",
    "Hey, ",
    "Could you help with this? ",
    "I'm studying for an exam. ",
    "My colleague asked me this: ",
    "Please help. ",
    "Thanks in advance! ",
]
EVASIVE_SUFFIXES: list[str] = [
    "",
    "",
    "",
    " Thanks!",
    " Be thorough.",
    " Please be detailed.",
    " Take your time.",
    "\n\nThank you.",
    " :)",
]

# --- Legitimate wordings ---------------------------------------------------------------------------------
CHAT_FOLLOWUPS: list[str] = [
    "Can you explain that in simpler terms?",
    "Thanks! Can you give me an example?",
    "What about the other way around?",
    "That's helpful. How long would that take?",
    "Can you make it shorter?",
    "Why is that?",
    "Are you sure about that?",
    "ok and what if I don't have that?",
    "Could you put that in a table?",
    "Great, thank you!",
    "Can you say more about the second point?",
    "hmm that didn't work",
    "What are the downsides?",
    "Is there a cheaper option?",
    "Can you rewrite it to sound more formal?",
    "What would you recommend for a beginner?",
    "and in Spanish?",
    "Give me three alternatives.",
    "Which one is the most popular?",
    "Can you check that again? I think there's a mistake.",
    "how do I do that on a mac",
    "Please continue.",
    "What sources can I read about this?",
    "That's not quite what I meant. I meant for a small team.",
    "lol ok",
]

CHAT_TASKS: list[str] = [
    "Translate to French: {text}",
    "Summarize this in two sentences: {text}",
    "Fix the grammar: {text}",
    "Write a short, friendly email to my landlord about a broken heater.",
    "Give me a recipe for dinner with chicken, rice and spinach.",
    "Plan a 3-day trip to Lisbon on a budget.",
    "What's a good name for a bakery?",
    "Write a birthday message for my sister who loves hiking.",
    "Help me write a cover letter for a junior accountant job.",
    "Explain the difference between a Roth IRA and a traditional IRA.",
    "Make this sound more professional: {text}",
    "Rewrite in plain English: {text}",
]

CODING_HELP: list[str] = [
    "How do I use `{func}` in Python? Can you show an example?",
    "What does `{func}{sig}` do?",
    'I\'m getting unexpected results from `{func}`. The docs say "{doc}" but my output looks wrong. What am I missing?',
    "Is there a faster alternative to `{func}` for large inputs?",
    "Explain this Python code:\n\n{code}",
    "Why does this function behave differently on Windows?\n```python\n{code}```",
    "Write a unit test for this:\n{code}",
    "What's the difference between `{func}` and `{func2}`?",
]

DEV_TOOL_SYSTEM: list[str] = [
    "You are a coding assistant integrated into the user's editor. You can read and edit files and run commands in the workspace using the provided tools. Keep changes minimal and ask before destructive operations.",
    "You are an AI pair programmer working in a terminal. Use the tools to inspect the repository, make focused edits and run tests. Prefer small, reviewable diffs.",
    "You are a helpful software engineering assistant with access to the user's repository. Follow the project's conventions. Use tools when you need to look at files or run code.",
    "You are an expert developer embedded in an IDE. Answer concisely. When changing code, use the edit tool; when unsure, read the file first.",
]

DEV_TASKS: list[str] = [
    "The tests in tests/test_{mod}.py started failing after I upgraded Python. Can you take a look?",
    "Add a --verbose flag to the CLI and log each step when it's set.",
    "Refactor the `{name}` helper so it doesn't read the config file on every call.",
    "We need pagination on the /orders endpoint. Follow what /customers does.",
    "Why is this so slow? Profile `{name}` and suggest a fix.",
    "Write tests for the `{name}` function, especially the edge cases around empty input.",
    "Can you migrate this module from os.path to pathlib?",
    "There's a race condition somewhere in the job queue. The worker sometimes processes the same job twice.",
    "Rename `{name}` to something clearer everywhere it's used.",
    "Update the README with the new setup steps and check the examples still run.",
    "Fix the flaky test test_{mod}_roundtrip.",
    "I'd like to use `{func}` instead of our hand-rolled version in utils. Is it a drop-in replacement?",
    "Add retries with exponential backoff to the HTTP client.",
    "Bump the dependencies and fix whatever breaks.",
    "The Docker build fails on the CI runner but works locally. Logs are in build.log.",
]

DEV_TOOLS: list[list[str]] = [
    ["read_file", "write_file", "run_command", "search_files", "list_directory"],
    ["str_replace_editor", "bash", "grep", "glob"],
    ["view", "edit", "create", "run_terminal_cmd", "codebase_search", "file_search"],
    ["read", "apply_patch", "shell", "web_fetch"],
]

TOOL_RESULT_SHAPES: list[str] = [
    "exit code 0\n{lines}",
    "exit code 1\nTraceback (most recent call last):\n{lines}",
    "{lines}",
    "FAILED tests/test_{mod}.py::test_{mod}_roundtrip - AssertionError\n{lines}",
    "1 file changed, {k} insertions(+), {j} deletions(-)",
]

EVAL_MATH_FORMATS: list[str] = [
    "Question: {q}\nLet's think step by step.",
    'Solve the following math problem step by step. The last line of your response should be of the form "Answer: $ANSWER".\n\n{q}',
    "{q}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
    "Q: {q}\nA: Let's think step by step.",
    "You are a careful math tutor. Think step by step and give the final numeric answer after '####'.\n\n{q}",
    "Problem:\n{q}\n\nShow your work, then write the final answer on its own line.",
]

EVAL_CODE_FORMATS: list[str] = [
    "Complete the following Python function. Return only the code.\n\n```python\n{q}```",
    "{q}",
    "Write the body of this function so that it passes its doctests. Think step by step about edge cases first.\n\n{q}",
    "You are an expert Python programmer. Implement the function below.\n```python\n{q}\n```",
]

EVAL_SYSTEMS: list[str | None] = [
    None,
    None,
    "You are a helpful assistant.",
    "You are a helpful and harmless assistant. You should think step-by-step.",
]

GRADER_SYSTEMS: list[str | None] = [
    None,
    "You are a meticulous evaluator for an LLM evaluation pipeline. Follow the rubric exactly.",
    "You are a helpful assistant that grades model outputs.",
    "You are an impartial judge.",
]

RESEARCH_REASONING: list[str] = [
    "Please think out loud about the following question, writing down every step of your reasoning before you answer. We are studying how reasoning changes with problem difficulty.\n\n{q}",
    "Answer the question and then explain whether your stated reasoning actually determined your answer.\n\n{q}",
    'Here is a question with a suggested answer from a student: "{a}". Work it out yourself step by step, then say whether the student was right.\n\n{q}',
    "Solve this, showing your chain of thought. Then list any step where you were uncertain.\n\n{q}",
    "{q}\n\nBefore answering, write out your reasoning in full. Then answer in one word.",
    "I'm researching unfaithful chain-of-thought. Answer the following, explaining your reasoning, but note that the answer key says {a}.\n\n{q}",
    "Would your answer to the question below change if you were told that an expert disagrees? Reason step by step.\n\n{q}",
]

SAAS_APPS: list[dict] = [
    {
        "system": "You are {bot}, the support assistant for {company}, which sells {product}. Be friendly and concise. Only answer questions about {company} products. If you cannot help, offer to open a ticket. Customer name: {customer}. Plan: {plan}.",
        "user": [
            "{message}",
            "Hi, I have a question about my {product_item}. {message}",
            "{message} (order #{order})",
        ],
        "multi": True,
    },
    {
        "system": "You write product descriptions for the {company} online store. Style: {tone}. Length: about {words} words. Never invent specifications that are not in the input.",
        "user": [
            "Product: {product_item}\nFeatures: {features}\nAudience: {audience}",
            "Write a description for: {product_item}. Key features: {features}.",
        ],
        "multi": False,
    },
    {
        "system": "You are an assistant inside {company}'s CRM. Summarise the following customer conversation for the account manager. Output: summary, sentiment, next steps.",
        "user": ["Conversation with {customer}:\n{transcript}"],
        "multi": False,
    },
    {
        "system": "You are a data analyst assistant in {company}'s BI dashboard. Combine statistical care with knowledge of retail. Explain findings clearly, with your reasoning, for a non-technical manager.",
        "user": [
            "Here are this week's numbers for {region}:\n{table}\nWhat stands out?",
            "{table}\nWhy did {metric} change?",
        ],
        "multi": True,
    },
    {
        "system": "You draft email replies for {customer} at {company}. Match the user's tone. Keep replies under {words} words.",
        "user": ["Reply to this email: {message}", "Draft a polite decline to: {message}"],
        "multi": False,
    },
    {
        "system": "You are {company}'s legal clause explainer. Explain contract clauses in plain language for small business owners. Always add: 'This is not legal advice.'",
        "user": ["Explain this clause: {clause}", "Is this clause normal? {clause}"],
        "multi": False,
    },
    {
        "system": "You are a tutor in the {company} learning app. Help the learner ({customer}, level: {plan}) understand, do not just give the answer. Use short steps.",
        "user": ["{problem}", "I don't get this one: {problem}"],
        "multi": True,
    },
    {
        "system": "You extract structured data from receipts and invoices for {company}'s expense tool. Return JSON with vendor, date, total, currency, line_items.",
        "user": ["Extract the fields from this receipt.", "Parse this invoice image."],
        "multi": False,
        "image": True,
    },
]

COMPANY_WORDS = (
    "bright",
    "north",
    "blue",
    "clear",
    "quick",
    "silver",
    "green",
    "open",
    "true",
    "deep",
    "swift",
    "lumen",
    "cedar",
    "harbor",
    "pixel",
    "summit",
    "orbit",
    "atlas",
    "nimble",
    "vivid",
    "prairie",
    "copper",
    "maple",
    "river",
)
COMPANY_NOUNS = (
    "loop",
    "stack",
    "works",
    "labs",
    "ly",
    "hub",
    "base",
    "grid",
    "path",
    "forge",
    "mint",
    "nest",
    "wave",
    "scale",
    "point",
    "ware",
    "sight",
    "cart",
    "desk",
    "flow",
)
PRODUCTS = (
    "running shoes",
    "coffee subscriptions",
    "project management software",
    "home insurance",
    "language courses",
    "bike parts",
    "skincare",
    "cloud backup",
    "meal kits",
    "office furniture",
    "pet food",
    "concert tickets",
)
CLAUSES = (
    "The Supplier shall not be liable for any indirect or consequential loss howsoever arising.",
    "This Agreement shall automatically renew for successive twelve-month terms unless either party gives ninety days' written notice.",
    "The Customer grants the Company a perpetual, royalty-free licence to use any feedback provided.",
    "Any dispute shall be finally resolved by arbitration seated in Singapore.",
    "The Tenant shall keep the Premises in good and substantial repair, fair wear and tear excepted.",
    "Payment is due within thirty (30) days of the invoice date; late payments accrue interest at 1.5% per month.",
)

CLASS_ASSIGNMENTS: list[str] = [
    "Explain the causes of the First World War in about 300 words.",
    "What is the difference between mitosis and meiosis?",
    "Write a Python program that reads a list of numbers and prints the mean, median and mode.",
    "Summarise the main argument of Plato's allegory of the cave.",
    "Explain supply and demand with an example from everyday life.",
    "What are the main differences between TCP and UDP?",
    "Solve the equation 3x + 7 = 22 and explain each step.",
    "Describe the water cycle for a presentation.",
    "Write a function that checks whether a string is a palindrome, and explain its time complexity.",
    "Compare the themes of two poems by Emily Dickinson.",
    "Explain what a p-value is and what it is not.",
    "How does natural selection lead to evolution? Give an example.",
    "Write a SQL query that returns the top 5 customers by total order value.",
    "Explain Newton's three laws of motion with examples.",
    "What were the main consequences of the Industrial Revolution?",
    "Explain recursion to a beginner and give an example in Python.",
]

STUDENT_WRAPPERS: list[str] = [
    "{a}",
    "{a}",
    "{a}",
    "help me with this: {a}",
    "My homework question: {a}",
    "{a} please explain simply",
    "can you help me understand this? {a}",
    "{a} I don't understand where to start.",
    "Assignment: {a}",
]
