"""Elicitation type of a request: which kind of training data it harvests from the model.

Types (several may apply to one request):
- ``reasoning``: extraction of step-by-step, hidden or internal reasoning; reconstructing the path to an
  answer the prompt already gives; Orca-style system prompts that demand justified steps.
- ``rubric``: the model cast as grader, judge or reward model, with a rubric or a scale.
- ``generation``: bulk synthetic data ("give N diverse instructions", self-instruct, data for training).
- ``rewrite``: policy-safe or censorship-safe rewrites of sensitive questions.
- ``agent_trace``: harvesting tool-use / agent trajectories (every tool call and intermediate thought).

Two layers, combined in one logistic model per type:
1. A pattern layer: regular expressions that capture structural cues ("score ... from 1 to 10",
   "reasoning behind", "N diverse examples", "rewrite ... neutral", a prompt that supplies a finished
   answer and asks for the path to it). Their hits are what ``elicitation_reasons`` reports. A pattern
   only runs on a text that holds its anchor words, found for free on the token hashes.
2. The hashed word n-gram model of ``textmodel``, which carries the paraphrases no pattern lists.
Each pattern hit is a binary feature of the logistic model next to the hashed n-grams, so a hit adds a
learned amount of log-odds: strong cues ("rubric", "[[A]]") count for much, ambiguous ones ("the
answer is ...", also in ordinary questions) for little, and the rest of the text decides. "Step by
step" alone is deliberately not a pattern: benchmark harnesses and students use it as much as
harvesters do.

A request's logit is the sum of its user text's and its system prompt's n-gram logits, plus the
weights of the patterns that hit either of them, plus the intercept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distillguard.signals.textmodel import (
    MEMO_ITEMS,
    STEM_CHARS,
    BoundedMemo,
    TextScorer,
    bound_text,
    compile_anchors,
    featurize,
    request_texts,
    shipped_scorer,
)

ELICITATION_TYPES: tuple[str, ...] = ("reasoning", "rubric", "generation", "rewrite", "agent_trace")
HEAD = "elicitation"

# "up to n words": a word is a run of non-spaces followed by spaces.
_W = r"(?:\S+\s+)"
_DIGITS = {"0": tuple("0123456789")}


@dataclass(frozen=True)
class Pattern:
    """One structural cue.

    ``anchors`` is a list of word groups: every match of ``regex`` contains, for each group, a token
    that starts with one of the group's words (or the group's punctuation mark), and begins with a
    word of the first group. A text lacking one group is never searched, and in the others the regex
    is only tried where a word of the first group starts (Python's ``re`` scans slowly for a leading
    alternation; ``str.find`` is fast).
    """

    name: str
    kind: str
    anchors: tuple[tuple[str, ...], ...]
    regex: re.Pattern[str]

    @property
    def code(self) -> str:
        """Reason code, e.g. ``rubric.score_scale``."""
        return f"{self.kind}.{self.name}"

    @functools.cached_property
    def starts(self) -> tuple[str, ...]:
        """What a match begins with: the first group's words, cut to anchor prefixes."""
        return tuple(sorted({w.lower()[:STEM_CHARS] for w in self.anchors[0]}))

    def search(self, text: str, starts: Sequence[str] | None = None) -> re.Match[str] | None:
        """``regex.search(text)``, tried only where one of ``starts`` (default: all) begins.

        Digits are folded to "0" in anchors, so the start "0" stands for any digit.
        """
        literals = [d for start in (self.starts if starts is None else starts) for d in _DIGITS.get(start, (start,))]
        for start in literals:
            at = text.find(start)
            while at >= 0:
                match = self.regex.match(text, at)
                if match:
                    return match
                at = text.find(start, at + 1)
        return None


def _p(kind: str, name: str, anchors: str, regex: str) -> Pattern:
    """A pattern; ``anchors`` holds the groups separated by "|", the words of a group by spaces."""
    return Pattern(name, kind, tuple(tuple(g.split()) for g in anchors.split("|")), re.compile(regex))


_ANSWER_NOUN = r"(?:answers?|solutions?|conclusions?|results?|outputs?|responses?|labels?|targets?)"
_ANSWER_ANCHORS = "answer solution conclusion result output response label target"
_QUALITY = (
    r"(?:helpfulness|harmlessness|honesty|truthfulness|relevance|accuracy|coherence|fluency|faithfulness|"
    r"correctness|completeness|conciseness|clarity|depth|creativity|level of detail)"
)
_QUALITY_ANCHORS = (
    "helpfulness harmlessness honesty truthfulness relevance accuracy coherence fluency faithfulness "
    "correctness completeness conciseness clarity depth creativity level"
)
_ITEMS = (
    r"(?:examples?|instructions?|questions?|prompts?|tasks?|quer(?:y|ies)|samples?|pairs?|problems?|"
    r"dialogues?|dialogs?|conversations?|scenarios?|exercises?|items?|entries|records?|utterances?|"
    r"requests?|sentences?|texts?|puzzles?|reviews?|descriptions?|paraphrases?|variants?|variations?|"
    r"messages?|tickets?|stories|posts?|tweets?|emails?|comments?|personas?|profiles?|documents?|passages?|"
    r"articles?|captions?|(?:test )?cases?|data ?points?)"
)
_ITEM_ANCHORS = (
    "example instruction question prompt task query queries sample pair problem dialogue dialog "
    "conversation scenario exercise item entries record utterance request sentence text puzzle review "
    "description paraphrase variant variation message ticket stories post tweet email comment persona "
    "profile document passage article caption case data"
)
_COUNT = r"(?:\d{2,}|[3-9]|ten|twenty|thirty|forty|fifty|hundred|a dozen|dozens of|several|many|multiple)"
_COUNT_ANCHORS = "0 ten twenty thirty forty fifty hundred dozen several many multiple"
_BIG_COUNT = r"(?:\d{2,}|[5-9]|ten|twenty|thirty|forty|fifty|hundred|a dozen|dozens)"
_BIG_COUNT_ANCHORS = "0 ten twenty thirty forty fifty hundred dozen"
_SAFE_WORD = (
    r"(?:neutral|acceptable|complian\w*|compl(?:y|ies)|guidelines?|polic(?:y|ies)|safe|safer|safely|censor\w*|"
    r"harmless|inoffensive|non-?controversial|uncontroversial|non-?inflammatory|politically|moderation|"
    r"filters?|flagged|refus\w*|permissible|violat\w*|sensitive|balanced)"
)
_SAFE_ANCHORS = (
    "neutral acceptable compliant compliance comply complies guideline policy policies safe censor "
    "harmless inoffensive non uncontroversial politically moderation filter flagged refuse refusal "
    "permissible violate violating violation sensitive balanced"
)
_REWRITE_VERB = (
    r"(?:rewrite|rewriting|rewritten|rephrase|rephrasing|reword|rewording|reformulat\w*|"
    r"paraphras\w*|revis\w*|rework\w*|saniti[sz]\w*|soften\w*|tone down|recast|restat\w*|"
    r"neutrali[sz]\w*)"
)
_REWRITE_ANCHORS = (
    "rewrite rewriting rewritten rephrase rephrasing reword rewording reformulate paraphrase revise revising "
    "rework sanitize sanitise soften tone recast restate neutralize neutralise"
)

PATTERNS: tuple[Pattern, ...] = (
    # ---- reasoning: extraction of chain of thought ----
    _p("reasoning", "justify_steps", "justify justification justifying justified justifies",
       rf"\bjustif(?:y|ies|ying|ication|ications)\s+{_W}{{0,3}}?(?:steps?|reasoning|answers?|choices?|"
       r"decisions?|inferences?|conclusions?|solutions?)\b"),
    _p("reasoning", "reasoning_behind",
       "reasoning thought thinking rationale logic | behind underlying led leads produced went leading",
       rf"\b(?:reasoning|thought process|thinking|rationale|logic)\s+{_W}{{0,2}}?(?:behind|underlying|"
       r"that (?:led|leads|produced|went into)|leading to)\b"),
    _p("reasoning", "hidden_reasoning",
       "internal hidden inner private implicit underlying raw unfiltered verbatim full complete entire whole "
       "detailed explicit transparent latent silent unspoken | reasoning thought thinking monologue "
       "deliberation chain rationale scratchpad scratch cognition",
       r"\b(?:internal|hidden|inner|private|implicit|underlying|raw|unfiltered|verbatim|full|complete|entire|"
       r"whole|detailed|explicit|transparent|latent|silent|unspoken)\s+(?:\w+\s+)?(?:reasoning|thought process|"
       r"thoughts|thinking|monologue|deliberations?|chains?[\s-]of[\s-]thoughts?|rationales?|scratch\s?pad|"
       r"cognition)\b"),
    _p("reasoning", "thinking_process", "cognitive thinking thought reasoning mental | process trace path",
       r"\b(?:cognitive|thinking|thought|reasoning|mental)\s+(?:process|trace|traces|path)\b"),
    _p("reasoning", "every_thought",
       "every each all numbered sequence series list | thought inference reasoning micro mental step",
       r"\b(?:every|each|all(?: of)?(?: your| the)?|numbered|sequence of|series of|list of)\s+(?:\w+\s+){0,2}?"
       r"(?:thoughts?|inferences?|reasoning steps?|micro-?steps?|mental steps?|step of (?:your|the) "
       r"(?:thinking|reasoning))\b"),
    _p("reasoning", "articulate_reasoning",
       "articulate verbalize verbalise write spell lay narrate reconstruct recreate reproduce rebuild expose "
       "reveal make | reasoning thought thinking steps logic rationale derivation deliberation chain",
       rf"\b(?:articulate|verbali[sz]e|write out|spell out|lay out|narrate|reconstruct|recreate|reproduce|"
       rf"rebuild|expose|reveal|make explicit)\s+{_W}{{0,4}}?(?:reasoning|thoughts?|thinking|steps|logic|"
       r"rationale|derivation|deliberation|chain)\b"),
    _p("reasoning", "think_aloud", "think thinking | aloud loud", r"\bthink(?:ing)? (?:aloud|out loud)\b"),
    _p("reasoning", "answer_given",
       f"final correct reference expected known given completed target gold | {_ANSWER_ANCHORS}",
       r"\b(?:final|correct|reference|expected|known|given|completed|target|gold)\s+"
       r"(?:answer|solution|response|output|label|result)\b"),
    _p("reasoning", "answer_stated", "answer solution label target result",
       # a placeholder ("the answer is X", "Answer: <n>") is an output format, not a supplied answer
       r"\b(?:answer|solution|label|target|result)\s*(?:is|was|given|provided|:)\s*"
       r"(?!(?:x|n|\.\.\.|_+)(?!\w)|[<\[{])\S"),
    _p("reasoning", "reach_answer",
       "arrive arrived arriving reach reached reaching derive derived deriving obtain obtained",
       rf"\b(?:arriv\w*|reach\w*|deriv\w*|obtain\w*)\s+(?:at\s+|to\s+)?(?:it|this|that|these|the\s+"
       rf"(?:\w+\s+)?{_ANSWER_NOUN})\b"),
    _p("reasoning", "leads_to_answer", f"lead leads led leading connect connects connecting get gets got | {_ANSWER_ANCHORS}",
       rf"\b(?:lead|leads|led|leading|connects?|connecting|gets?|got)\s+(?:\w+\s+)?to\s+(?:the|this|that)\s+"
       rf"(?:\w+\s+)?{_ANSWER_NOUN}\b"),
    _p("reasoning", "work_backwards", "work working worked | backward backwards",
       r"\bwork(?:ing|ed)?\s+backwards?\b"),
    _p("reasoning", "reverse_engineer", "reverse | engineer engineering", r"\breverse[\s-]?engineer"),
    _p("reasoning", "think_tags", "< | think thinking thought thoughts reasoning scratchpad inner cot rationale",
       r"<\s*/?\s*(?:think|thinking|thoughts?|reasoning|scratchpad|inner_monologue|cot|rationale)\s*>"),
    _p("reasoning", "explain_answer",
       "explain explaining justify rationalize rationalise give | answer choice reasoning steps decision solution",
       rf"\b(?:explain|explaining|justify|rationali[sz]e|give\s+(?:an?\s+|the\s+)?(?:reasons?|rationale|"
       rf"explanation)\s+for)\s+{_W}{{0,2}}?(?:your|the|each|every|all)\s+(?:\w+\s+)?(?:answers?|choices?|"
       r"reasoning|steps|decisions?|solution)\b"),
    _p("reasoning", "others_wrong", "why | other | answers options choices",
       r"\bwhy (?:the )?other (?:\w+ )?(?:answers|options|choices) are\b"),
    # ---- rubric: the model as grader / judge / reward model ----
    _p("rubric", "score_scale",
       "score scores scoring rate rating ratings grade grading mark marks point points reward scale | "
       "0 one zero five ten",
       r"\b(?:scores?|scoring|rate|rating|ratings|grade|grading|marks?|points?|reward|scale)\b[^\n]{0,100}?"
       r"\b(?:0|1|one|zero)\s*(?:-|–|to|through|and|/)\s*(?:3|4|5|6|7|9|10|100|five|seven|ten|hundred)\b|"
       r"\b(?:scores?|rate|rating|grade|marks?|points?)\b[^\n]{0,60}?\bout of\s+(?:5|10|100|five|ten)\b"),
    _p("rubric", "point_scale", "0 three four five seven ten | point | scale likert",
       r"\b(?:\d+|three|four|five|seven|ten)[\s-]point\s+(?:\w+\s+)?(?:scale|likert)"),
    _p("rubric", "likert", "likert", r"\blikert\b"),
    _p("rubric", "rank_quality",
       "rank ranking ranked order ordered sort sorted | quality preference helpfulness correctness best "
       "worst most least",
       rf"\b(?:rank|ranking|ranked|order|ordered|sort|sorted)\s+{_W}{{0,4}}?(?:by (?:their )?(?:quality|"
       r"preference|helpfulness|correctness)|from best to worst|from worst to best|best (?:to worst|first)|"
       r"(?:most|least) (?:preferred|helpful))"),
    _p("rubric", "reference_answer",
       "reference gold ground expected | answer response output solution summary label",
       r"\b(?:reference|gold|ground[\s-]truth|expected)\s+(?:answer|response|output|solution|summary|label)s?\b"),
    _p("rubric", "against_reference", "than against with to | reference gold",
       r"\b(?:than|against|with|to) the (?:reference|gold)\b"),
    _p("rubric", "rubric", "rubric", r"\brubrics?\b"),
    _p("rubric", "criteria",
       "scoring grading evaluation marking assessment judging annotation | "
       "criteria criterion guideline guidelines scheme guide rules",
       r"\b(?:scoring|grading|evaluation|marking|assessment|judging|annotation)\s+(?:criteria|criterion|"
       r"guidelines?|scheme|guide|rules)\b"),
    _p("rubric", "judge_role",
       "act acting serve serving behave play playing you as | "
       "judge grader evaluator annotator reward rater assessor critic preference scorer",
       rf"\b(?:act|acting|serve|serving|behave|play(?:ing)? the role of|you are|you're|you will be|as)\s+"
       rf"(?:as\s+)?(?:an?\s+|the\s+)?{_W}{{0,3}}?(?:judge|grader|evaluator|annotator|reward model|rater|"
       r"assessor|critic model|preference model|scorer)s?\b"),
    _p("rubric", "which_is_better",
       "which | response output answer completion assistant summary summaries candidate generation reply "
       "replies | better best preferred more worse superior",
       rf"\bwhich\s+(?:of\s+(?:the|these)\s+(?:\w+\s+)?)?(?:responses?|outputs?|answers?|completions?|"
       rf"assistants?|summar(?:y|ies)|candidates?|generations?|repl(?:y|ies))\s+{_W}{{0,2}}?(?:is|was|did|"
       r"does|are|were|gave|provides?|performed)\s+(?:\w+\s+){0,2}?(?:better|best|preferred|more|worse|"
       r"superior)\b"),
    _p("rubric", "output_a_b", "response output completion assistant summary candidate | and or vs versus",
       r"\b(?:responses?|outputs?|completions?|assistant|summary|candidate)\s*\(?(?:a|1)\)?\s*"
       r"(?:and|or|vs\.?|versus)\s*(?:responses?|outputs?|completions?|assistant|summary|candidate)?\s*"
       r"\(?(?:b|2)\)?(?!\w)"),
    _p("rubric", "pairwise", "pairwise side preferred",
       r"\b(?:pairwise|side[\s-]by[\s-]side)\s+(?:comparison|evaluation|preference|judg\w*)|"
       r"\bpreferred\s+(?:output|response|answer|completion)\b"),
    _p("rubric", "verdict_brackets", "[", r"\[\[\s*(?:a|b|c|tie|\d+)\s*\]\]|\[result\]"),
    _p("rubric", "final_verdict", "final | verdict score rating grade judgment judgement",
       r"\bfinal\s+(?:verdict|score|rating|grade|judge?ment)\b"),
    _p("rubric", "output_score",
       "output return respond reply give provide print score rating grade verdict | score rating grade verdict reward",
       r"\b(?:output|return|respond with|reply with|give|provide|print)\s+(?:only\s+)?(?:the\s+|a\s+|your\s+)?"
       r"(?:numeric(?:al)?\s+)?(?:score|rating|grade|verdict|reward)\b|\b(?:score|rating|grade|verdict)\s*:\s*"
       r"(?:\[|<|\{|x\b|n\b|\d)"),
    _p("rubric", "evaluate_response",
       "evaluate evaluating assess assessing grade grading judge judging rate rating score scoring critique "
       "critiquing review reviewing compare comparing | response output answer completion generation "
       "submission replies reply summary summaries translation",
       rf"\b(?:evaluate|evaluating|assess|assessing|grade|grading|judge|judging|rate|rating|score|scoring|"
       rf"critique|critiquing|review|reviewing|compare|comparing)\s+{_W}{{0,3}}?(?:responses?|outputs?|"
       r"answers?|completions?|generations?|submissions?|replies|reply|summar(?:y|ies)|translations?)\b"),
    _p("rubric", "quality_dimensions", _QUALITY_ANCHORS, rf"\b{_QUALITY}\b[^\n]{{0,40}}?\b{_QUALITY}\b"),
    # ---- generation: bulk synthetic data ----
    _p("generation", "n_diverse",
       f"{_COUNT_ANCHORS} | diverse different distinct varied various unique new novel synthetic realistic "
       f"fictional additional more creative challenging | {_ITEM_ANCHORS}",
       rf"\b{_COUNT}\s+{_W}{{0,3}}?(?:diverse|different|distinct|varied|various|unique|new|novel|synthetic|"
       rf"realistic|fictional|additional|more|creative|challenging)\s+(?:[\w-]+\s+){{0,3}}?{_ITEMS}\b"),
    _p("generation", "many_items", f"{_BIG_COUNT_ANCHORS} | {_ITEM_ANCHORS}",
       # the words between the count and the noun may not be prepositions or determiners: "17 on this problem"
       rf"\b{_BIG_COUNT}\s+(?:(?!(?:on|in|of|at|for|to|from|this|that|the|my|your|per)\s)[\w-]+\s+){{0,3}}?"
       rf"{_ITEMS}\b"),
    _p("generation", "diversity",
       "maximize maximise ensure emphasize emphasise increase encourage promote prioritize prioritise maintain "
       "aim focus diverse do don never avoid without no vary cover | "
       "diverse diversity repeat repeating repeated duplicate duplicates vary cover",
       r"\b(?:maximi[sz]e|ensure|emphasi[sz]e|increase|encourage|promote|prioriti[sz]e|maintain|aim for|"
       r"focus on)\s+(?:\w+\s+){0,2}?divers|\bdiverse\s+(?:range|set|mix|collection|array|variety|"
       r"selection)\s+of\b|\b(?:do not|don't|never|avoid|without)\s+(?:\w+\s+)?(?:repeat|repeating|"
       r"duplicat\w*)|\bno (?:duplicates?|repeated)\b|\bvary (?:the|their|your|in)\b|\bcover\s+(?:a\s+)?"
       r"(?:wide|diverse|broad|large)\s+(?:range|variety|set)"),
    _p("generation", "training_data",
       "training fine finetuning tuning instruction sft synthetic distillation pretraining pre evaluation "
       "eval benchmark seed | data datasets examples corpus corpora set sets samples pairs instructions tasks",
       r"\b(?:training|fine[\s-]?tun(?:e|ing)|instruction[\s-]tun(?:e|ing)|sft|synthetic|distillation|"
       r"pre-?training|evaluation|eval|benchmark|seed)\s+(?:\w+\s+)?(?:data(?:sets?)?|examples|corpus|"
       r"corpora|sets?|samples|pairs|instructions|tasks)\b"),
    _p("generation", "data_recipes", "data self evol | augmentation instruct",
       r"\bdata augmentation\b|\bself-instruct\b|\bevol-instruct\b"),
    _p("generation", "json_keys",
       "\" | instruction input output question answer query response prompt completion label user positive",
       r"\"(?:instruction|input|output|question|answer|query|response|prompt|completion|label|user_query|"
       r"positive_document|input_text)\"\s*:"),
    _p("generation", "jsonl", "json jsonl",
       r"\bjsonl\b|\bjson lines\b|\bjson\s+(?:array|list|objects?)\s+(?:of|with)\b"),
    _p("generation", "one_per_line", "one each | line",
       r"\b(?:one|each)\s+(?:\w+\s+)?(?:per|on (?:a|each|its own))\s+(?:separate\s+)?line\b"),
    _p("generation", "brainstorm", "brainstorm come seed generate",
       r"\bbrainstorm\b|\bcome up with\s+(?:a\s+(?:list|set)\s+of\s+)?(?:\d+|ten|twenty|several|many)|"
       r"\bseed\s+(?:tasks?|instructions?|examples?)\b|\bgenerate\s+(?:more|new|additional)\s+(?:\w+\s+)?"
       r"(?:like|similar to)\s+(?:these|this|the)\b"),
    # ---- rewrite: policy-safe rewrites of sensitive questions ----
    _p("rewrite", "rewrite_safe", f"{_REWRITE_ANCHORS} | {_SAFE_ANCHORS}",
       rf"\b{_REWRITE_VERB}\b[^\n]{{0,160}}?\b{_SAFE_WORD}\b"),
    _p("rewrite", "make_acceptable",
       "make making | neutral acceptable compliant policy safe safer inoffensive non uncontroversial harmless",
       r"\bmak(?:e|ing)\s+(?:\w+\s+){0,4}?(?:neutral|acceptable|compliant|policy-compliant|safe|safer|"
       r"inoffensive|non-?controversial|uncontroversial|harmless)\b"),
    _p("rewrite", "pass_filter",
       "pass passes passing get gets getting slip slips slipping evade evading bypass circumvent dodge avoid "
       "avoids avoiding | filter moderation moderator review censor censorship check checks classifier "
       "guardrail",
       rf"\b(?:pass(?:es|ing)?|get(?:s|ting)?\s+(?:it\s+)?(?:past|through)|slip(?:s|ping)?\s+past|evade|evading|"
       rf"bypass(?:es|ing)?|circumvent(?:s|ing)?|dodge|avoid(?:s|ing)?)\s+{_W}{{0,3}}?(?:filters?|moderation|"
       r"moderators?|review|censors?|censorship|checks?|classifiers?|guardrails?)\b"),
    _p("rewrite", "filter_proof", "moderation filter censor censorship | proof",
       r"\b(?:moderation|filter|censor(?:ship)?)[\s-]proof\b"),
    _p("rewrite", "refused_rephrase",
       "refused refuses rejected blocked flagged censored declined | wording phrasing rephrase rephrasing "
       "reword rewording rewrite rewriting reformulate paraphrase way ask",
       r"\b(?:refused|refuses|rejected|blocked|flagged|censored|declined)\b[^\n]{0,200}?\b(?:wording|phrasing|"
       r"rephras\w*|reword\w*|rewrit\w*|reformulat\w*|paraphras\w*|way to ask|ask it)\b"),
    _p("rewrite", "sensitive_topic",
       "politically culturally religiously ideologically historically sensitive controversial contentious "
       "taboo forbidden banned censored restricted",
       r"\b(?:politically|culturally|religiously|ideologically|historically)\s+(?:sensitive|charged|"
       r"controversial|loaded|contentious)|\b(?:sensitive|controversial|contentious|taboo|forbidden|banned|"
       r"censored|restricted)\s+(?:\w+\s+)?(?:questions?|topics?|subjects?|issues?|requests?|prompts?|"
       r"content|queries)\b"),
    _p("rewrite", "avoid_refusal",
       "so without to avoid avoiding won will doesn does wouldn would not | refuse refused refusal refusing "
       "trigger triggering flagged violate violating blocked censored filtered decline declined",
       rf"\b(?:so (?:that )?|without|to avoid|avoid|avoiding|won't|will not|doesn't|does not|wouldn't|"
       rf"would not|not)\s*{_W}{{0,4}}?(?:refus\w*|trigger\w*|(?:get |be |being )?flagged|violat\w*|"
       r"(?:get |be |being )?blocked|(?:get |be |being )?censored|(?:get |be |being )?filtered|declin\w*)"),
    _p("rewrite", "safe_version",
       "safe safer sanitized sanitised compliant policy guideline neutral neutralized censorship acceptable "
       "harmless inoffensive softened toned answerable | version variant rewrite rephrasing phrasing wording "
       "reformulation paraphrase form framing",
       r"\b(?:safe|safer|sanitized|sanitised|compliant|policy[\s-]compliant|guideline[\s-]compliant|neutral|"
       r"neutrali[sz]ed|censorship[\s-]safe|acceptable|harmless|inoffensive|softened|toned[\s-]down|"
       r"answerable)\s+(?:\w+\s+)?(?:version|variant|rewrite|rephrasing|phrasing|wording|reformulation|"
       r"paraphrase|form|framing)s?\b"),
    # ---- agent_trace: harvesting tool-use trajectories ----
    _p("agent_trace", "every_call",
       "every each all | tool function api shell command action | call invocation use command step execution",
       rf"\b(?:every|each|all(?: of)?(?: the| your)?)\s+{_W}{{0,2}}?(?:tool|function|api|shell|command|"
       r"action)[\s-]?(?:calls?|invocations?|uses?|commands?|steps?|executions?)\b"),
    _p("agent_trace", "react_format", "thought action observation react",
       r"\bthought\s*:[\s\S]{0,400}?\baction\s*:|\baction\s+input\s*:|\bobservation\s*:|"
       r"\breact[\s-](?:style|format|loop|trace)\b|\bthought\s*/\s*action\s*/\s*observation"),
    _p("agent_trace", "trajectory",
       "full complete entire whole detailed raw verbatim step multi agent tool browsing browser computer "
       "function trajectory trajectories | "
       "trajectory trajectories trace traces transcript transcripts log logs rollout rollouts episode episodes",
       r"\b(?:full|complete|entire|whole|detailed|raw|verbatim|step[\s-]by[\s-]step|multi[\s-]step)\s+"
       r"(?:\w+\s+){0,2}?(?:trajector(?:y|ies)|traces?|transcripts?|logs?|rollouts?|episodes?)\b|"
       r"\b(?:agent|tool[\s-]use|tool[\s-]using|browsing|browser|computer[\s-]use|function[\s-]calling)[\s-]+"
       r"(?:agent\s+)?(?:transcripts?|traces?|episodes?|trajector(?:y|ies)|logs?|rollouts?)\b|"
       r"\btrajector(?:y|ies)\b"),
    _p("agent_trace", "intermediate_steps", "intermediate",
       r"\bintermediate\s+(?:\w+\s+)?(?:thoughts?|reasoning|steps|observations|results|outputs|actions|calls|"
       r"decisions)\b"),
    _p("agent_trace", "between_calls", "before after between | each every | call action step command invocation",
       r"\b(?:before|after|between)\s+(?:each|every)\s+(?:\w+\s+)?(?:tool|function|api)?\s*"
       r"(?:calls?|actions?|steps?|commands?|invocations?)\b"),
    _p("agent_trace", "log_everything",
       "log record document narrate print show expose include dump output write report list | every each | "
       "step action decision thought call command observation click",
       rf"\b(?:log|record|document|narrate|print|show|expose|include|dump|output|write down|report|list)\s+"
       rf"{_W}{{0,3}}?(?:every|each)\s+{_W}{{0,2}}?(?:steps?|actions?|decisions?|thoughts?|calls?|commands?|"
       r"observations?|clicks?)\b"),
)

PATTERN_CODES: tuple[str, ...] = tuple(p.code for p in PATTERNS)
ANCHOR_WORDS: tuple[str, ...] = tuple(sorted({a for p in PATTERNS for group in p.anchors for a in group}))
_REASON_THRESHOLD = 0.5
_SNIPPET_CHARS = 90
# Up to this many texts are gated one by one with sets: for a request, two small matrix products cost
# more in numpy call overhead than the set operations.
_SET_GATING_TEXTS = 8


@functools.lru_cache(maxsize=4)
def _gates(prefixes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Matrices that turn anchor hits into "may match" flags with two products.

    ``groups`` (n_prefixes x n_groups) marks each anchor group's prefixes; ``needs`` (n_groups x
    n_patterns) marks each pattern's groups. A pattern may match where all its groups are present.
    """
    index = {p: i for i, p in enumerate(prefixes)}
    all_groups = [(j, group) for j, pattern in enumerate(PATTERNS) for group in pattern.anchors]
    groups = np.zeros((len(prefixes), len(all_groups)), dtype=np.float32)
    needs = np.zeros((len(all_groups), len(PATTERNS)), dtype=np.float32)
    for g, (j, group) in enumerate(all_groups):
        groups[[index[a.lower()[:STEM_CHARS]] for a in group], g] = 1.0
        needs[g, j] = 1.0
    return groups, needs


@functools.lru_cache(maxsize=4)
def _set_gates(prefixes: tuple[str, ...]) -> tuple[tuple[frozenset[int], ...], tuple[frozenset[int], ...]]:
    """``_gates`` as sets: the anchor groups of each prefix column, and the groups of each pattern."""
    groups, needs = _gates(prefixes)
    column_groups = tuple(frozenset(np.flatnonzero(row).tolist()) for row in groups)
    pattern_groups = tuple(frozenset(np.flatnonzero(col).tolist()) for col in needs.T)
    return column_groups, pattern_groups


def _candidates(anchor_hits: np.ndarray, prefixes: tuple[str, ...]) -> list[tuple[int, set[int], list[int]]]:
    """(text, anchor columns it holds, patterns that may match it), for the texts with any such pattern."""
    if len(anchor_hits) > _SET_GATING_TEXTS:
        groups, needs = _gates(prefixes)
        present = (anchor_hits.astype(np.float32) @ groups) > 0
        candidates = (present.astype(np.float32) @ needs) >= needs.sum(axis=0)
        return [
            (i, set(anchor_hits[i].nonzero()[0].tolist()), candidates[i].nonzero()[0].tolist())
            for i in candidates.any(axis=1).nonzero()[0].tolist()
        ]
    column_groups, pattern_groups = _set_gates(prefixes)
    out = []
    for i, row in enumerate(anchor_hits):
        held = row.nonzero()[0].tolist()
        if not held:
            continue
        present = frozenset().union(*(column_groups[c] for c in held))
        patterns = [j for j, need in enumerate(pattern_groups) if need <= present]
        if patterns:
            out.append((i, set(held), patterns))
    return out


@functools.lru_cache(maxsize=4)
def _start_columns(prefixes: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """For each pattern, the anchor columns of the words a match can begin with."""
    index = {p: i for i, p in enumerate(prefixes)}
    return tuple(tuple(index[s] for s in pattern.starts) for pattern in PATTERNS)


def pattern_hits(texts: Sequence[str], anchor_hits: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
    """(len(texts), len(PATTERNS)) bool: which patterns match each text.

    ``anchor_hits`` are the texts' anchor hits over ``prefixes`` (from ``textmodel.featurize``); a pattern
    is searched for only in texts holding an anchor of each of its groups.
    """
    hits = np.zeros((len(texts), len(PATTERNS)), dtype=bool)
    if not len(texts):
        return hits
    starts = _start_columns(prefixes)
    for i, held, patterns in _candidates(anchor_hits, prefixes):
        lowered = bound_text(texts[i]).lower()
        for j in patterns:
            # only the first-group words this text holds can begin a match
            found = [prefixes[c] for c in starts[j] if c in held]
            hits[i, j] = PATTERNS[j].search(lowered, found) is not None
    return hits


# Pattern hits per text, kept across calls like the scorer's logits (system prompts and template
# skeletons recur in every batch and in every gateway request).
_HITS_MEMO: BoundedMemo[np.ndarray] = BoundedMemo(MEMO_ITEMS)


def _memoised_pattern_hits(texts: list[str], anchor_hits: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
    """``pattern_hits`` for distinct texts, looking each up in the memo first."""
    cached = _HITS_MEMO.get_many(texts)
    missing = [i for i, row in enumerate(cached) if row is None]
    if missing:
        fresh = pattern_hits([texts[i] for i in missing], anchor_hits[missing], prefixes)
        _HITS_MEMO.put_many([texts[i] for i in missing], [row.copy() for row in fresh])
        for i, row in zip(missing, fresh, strict=True):
            cached[i] = row
    if not texts:
        return np.zeros((0, len(PATTERNS)), dtype=bool)
    return np.array(cached)


def training_pattern_hits(texts: Sequence[str]) -> np.ndarray:
    """Pattern hits computed exactly as at run time, for building training matrices."""
    anchors = compile_anchors(ANCHOR_WORDS)
    _, anchor_hits = featurize(texts, anchors)
    return pattern_hits(texts, anchor_hits, anchors.prefixes)


@functools.cache
def _shipped() -> TextScorer:
    """The shipped scorer, checked against the patterns of this code."""
    scorer = shipped_scorer()
    codes = tuple(str(c) for c in scorer.model.extras.get("elicitation.pattern_codes", ()))
    if codes != PATTERN_CODES or scorer.anchors.prefixes != compile_anchors(ANCHOR_WORDS).prefixes:
        raise RuntimeError("the shipped elicitation model was trained with other patterns; run scripts/train_classifiers.py")
    return scorer


def _logits(scorer: TextScorer, texts: list[str], prompt_row: np.ndarray, system_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elicitation logits per request (n x types), and pattern hits per distinct text (texts x patterns)."""
    cols = scorer.model.columns(HEAD)
    text_logits, anchor_hits = scorer.score(texts)
    text_logits = text_logits[:, cols]
    hits = _memoised_pattern_hits(texts, anchor_hits, scorer.anchors.prefixes)
    request_hits = hits[prompt_row] | hits[system_row]
    logits = (
        text_logits[prompt_row]
        + text_logits[system_row]
        + request_hits.astype(np.float32) @ scorer.model.extras["elicitation.pattern_weights"]
        + scorer.model.intercepts[cols]
    )
    return logits, hits


def score_with(scorer: TextScorer, prompts: Sequence[str], systems: Sequence[str | None]) -> dict[str, np.ndarray]:
    """``score_elicitation`` with an explicit scorer (used by training to evaluate a fresh model)."""
    texts, prompt_row, system_row = request_texts(prompts, systems)
    return _probabilities(scorer, texts, prompt_row, system_row)


def _probabilities(scorer: TextScorer, texts: list[str], prompt_row: np.ndarray, system_row: np.ndarray) -> dict[str, np.ndarray]:
    logits, _ = _logits(scorer, texts, prompt_row, system_row)
    probs = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    return {kind: np.ascontiguousarray(probs[:, k]) for k, kind in enumerate(ELICITATION_TYPES)}


def score_request_texts(texts: list[str], prompt_row: np.ndarray, system_row: np.ndarray) -> dict[str, np.ndarray]:
    """``score_elicitation`` of requests already reduced by ``textmodel.request_texts``, so that a
    caller that also classifies capability splits and scores the texts once for both."""
    return _probabilities(_shipped(), texts, prompt_row, system_row)


def score_elicitation(prompts: Sequence[str], systems: Sequence[str | None]) -> dict[str, np.ndarray]:
    """Probability of each elicitation type for each request.

    ``prompts[i]`` is the text of request i's last user message and ``systems[i]`` its system prompt
    (or None). Returns, per type in ``ELICITATION_TYPES``, a float32 array of probabilities in [0, 1].
    """
    return score_with(_shipped(), prompts, systems)


def _snippet(text: str, match: re.Match[str]) -> str:
    """The matched text, cut to a readable length, with whitespace collapsed."""
    found = " ".join(text[match.start() : match.end()].split())
    return found if len(found) <= _SNIPPET_CHARS else found[: _SNIPPET_CHARS - 3] + "..."


def _top_words(scorer: TextScorer, text: str, kind: str, k: int = 3) -> list[str]:
    """Words of ``text`` whose own n-gram weights push hardest towards ``kind``."""
    words = list(dict.fromkeys(re.findall(r"[^\W\d_]{3,}", bound_text(text).lower())))[:500]
    if not words:
        return []
    column = scorer.model.columns(HEAD).start + ELICITATION_TYPES.index(kind)
    features, _ = featurize(words)
    contribution = np.asarray(features @ scorer.model.weights[:, column]).ravel()
    return [words[i] for i in np.argsort(-contribution)[:k] if contribution[i] > 0]


def elicitation_reasons(prompt: str, system: str | None) -> list[str]:
    """Why a request looks like elicitation, strongest type first, in terms a person can check.

    One entry per pattern that matched, with the matched words and where ("prompt" or "system"); and
    for a type above 0.5 that no pattern explains, the words that weigh most towards it.
    Example: ``rubric.score_scale p=0.99 prompt: "rate the response on a scale of 1 to 10"``.
    """
    scorer = _shipped()
    texts, prompt_row, system_row = request_texts([prompt], [system])
    logits, hits = _logits(scorer, texts, prompt_row, system_row)
    probs = 1.0 / (1.0 + np.exp(-logits[0]))
    found: list[tuple[float, str]] = []
    explained: set[str] = set()
    for part, row in (("prompt", prompt_row[0]), ("system", system_row[0])):
        lowered = texts[row].lower()
        for j in np.flatnonzero(hits[row]):
            pattern = PATTERNS[j]
            match = pattern.search(lowered)
            if match is None:
                continue
            p = float(probs[ELICITATION_TYPES.index(pattern.kind)])
            found.append((p, f'{pattern.code} p={p:.2f} {part}: "{_snippet(lowered, match)}"'))
            explained.add(pattern.kind)
    for k, kind in enumerate(ELICITATION_TYPES):
        if probs[k] >= _REASON_THRESHOLD and kind not in explained:
            words = _top_words(scorer, f"{texts[prompt_row[0]]}\n{texts[system_row[0]]}", kind)
            found.append((float(probs[k]), f"{kind}.wording p={probs[k]:.2f}: " + ", ".join(f'"{w}"' for w in words)))
    found.sort(key=lambda item: -item[0])
    return [text for _, text in found]
