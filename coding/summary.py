"""The group summary (Appendix A.3 session artifacts), computed without any model call.

Topics: TF-IDF keywords over the conversations (one document per conversation), with a
tokenizer that works across scripts (letters and combining marks form words; Chinese,
Japanese and Korean ideographs, written without spaces, are split into character bigrams;
Devanagari vowel signs and viramas, Arabic diacritics and zero-width joiners stay inside their
word; words are compared in one normal form (workshops.text.normalize), Arabic diacritics and
tatweel left out, and frequent function words of en/hi/ar/es/sw are dropped).
Label frequencies: how often each code (normalized) was applied, and by how many people.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable

from django.utils import timezone

from workshops.text import normalize

MAX_TOPICS = 20
# Topics kept in the result: participants see the first MAX_TOPICS of those they may see.
TOPIC_CANDIDATES = 3 * MAX_TOPICS
# A participant sees a group topic only if it comes from conversations they can read (their own
# and the baseline set) or from at least this many other people's: a word of one other person's
# private conversation is never shown to them (issue 10, item 2).
TOPIC_MIN_PEOPLE = 2
KEYWORDS_PER_CONVERSATION = 6
MAX_HIGHLIGHTS_SHOWN = 300
# Bumped when what a result holds changes: part of the fingerprint, so older results show as
# out of date and the facilitator's "Update" computes a new one.
FORMAT = 3

# Joiners inside a word (Devanagari half forms, Persian/Urdu compounds) and Arabic marks that
# do not change the word (short-vowel diacritics, the elongation tatweel): kept while reading a
# word, left out of the counted form so that spellings with and without them count together.
_JOINERS = "\u200c\u200d"
_IGNORED_IN_KEY = dict.fromkeys(
    [0x200C, 0x200D, 0x0640, *range(0x064B, 0x0660), 0x0670, *range(0x06D6, 0x06DD), *range(0x06DF, 0x06E5),
     0x06E7, 0x06E8, *range(0x06EA, 0x06EE)]
)

# Small stop-word lists for the languages the interface ships (English comes from scikit-learn):
# the most frequent function words only, so they do not crowd the topics.
STOP_WORDS_BY_LANGUAGE = {
    "hi": """और का की के को में है हैं था थे थी से पर भी यह वह ये वो कि जो तो ही एक लिए नहीं कर करना करते
        किया हो होता होती होते गया गई रहा रही रहे साथ अपने अपना अपनी इस उस इन उन कुछ क्या कैसे जब तक बहुत
        मैं हम तुम आप वे या लेकिन अगर ने""",
    "ar": """في من على إلى عن مع هذا هذه ذلك تلك التي الذي الذين هو هي هم أن إن كان كانت يكون لا ما لم لن
        قد كل بعض أو ثم و أي عند بين حتى إذا هل كما لقد أنا نحن أنت انت هناك هنا فقط ب ل ف""",
    "es": """de la que el en y a los se del las un por con no una su para es al lo como más pero sus le ya o
        este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos
        durante todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo otro""",
    "sw": """na ya wa kwa ni za la katika hii huo hiyo hizo ambayo ambao kama lakini au pia sana tu bila
        kuwa alikuwa walikuwa yeye wao mimi sisi wewe ninyi hilo hayo kila baada kabla juu chini""",
}


def key(word: str) -> str:
    """The counted form of a word: normalised and without the marks in _IGNORED_IN_KEY."""
    return word.translate(_IGNORED_IN_KEY)


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF
            or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FA1F)


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = set(ENGLISH_STOP_WORDS)
    for listed in STOP_WORDS_BY_LANGUAGE.values():
        words.update(key(normalize(w)) for w in listed.split())
    return frozenset(words)


def tokenize(text: str, stop_words: frozenset[str] = frozenset()) -> list[str]:
    text = normalize(text)
    tokens: list[str] = []
    word: list[str] = []
    cjk: list[str] = []

    def flush():
        if word:
            w = key("".join(word))
            if len(w) >= 2 and w not in stop_words and not w.isdigit():
                tokens.append(w)
            word.clear()
        if cjk:
            if len(cjk) == 1:
                tokens.append(cjk[0])
            else:
                tokens.extend(cjk[i] + cjk[i + 1] for i in range(len(cjk) - 1))
            cjk.clear()

    for ch in text:
        if _is_cjk(ch):
            if word:
                flush()
            cjk.append(ch)
        elif unicodedata.category(ch)[0] in "LMN" or (ch in "'’" and word) or (ch in _JOINERS and word):
            if cjk:
                flush()
            word.append(ch)
        else:
            flush()
    flush()
    return [t.strip("'’") for t in tokens if t.strip("'’")]


def topics(documents: list[str]) -> tuple[list[dict], list[list[str]]]:
    """(overall topics, keywords per document)."""
    docs = [d for d in documents]
    if not any(d.strip() for d in docs):
        return [], [[] for _ in docs]
    from sklearn.feature_extraction.text import TfidfVectorizer

    stop = _stop_words()
    vectorizer = TfidfVectorizer(
        tokenizer=lambda t: tokenize(t, stop), lowercase=False, token_pattern=None,
        sublinear_tf=True, max_df=0.85 if len(docs) >= 5 else 1.0,
    )
    try:
        matrix = vectorizer.fit_transform(docs)
    except ValueError:  # every word was a stop word or filtered out
        return [], [[] for _ in docs]
    terms = vectorizer.get_feature_names_out()
    per_doc = []
    for i in range(matrix.shape[0]):
        row = matrix.getrow(i)
        pairs = sorted(zip(row.indices, row.data), key=lambda p: (-p[1], terms[p[0]]))
        per_doc.append([str(terms[j]) for j, _w in pairs[:KEYWORDS_PER_CONVERSATION]])
    totals = matrix.sum(axis=0).A1
    doc_freq = (matrix > 0).sum(axis=0).A1
    order = sorted(range(len(terms)), key=lambda j: (-totals[j], terms[j]))[:TOPIC_CANDIDATES]
    top = totals[order[0]] if order else 1.0
    columns = matrix.tocsc()
    overall = [
        {"term": str(terms[j]), "weight": round(float(totals[j] / top), 3), "conversations": int(doc_freq[j]),
         "size": round(0.9 + 1.1 * float(totals[j] / top), 2),
         "documents": [int(i) for i in columns.getcol(j).nonzero()[0]]}
        for j in order
    ]
    return overall, per_doc


def label_frequencies(labels: list[tuple[int, str, str]]) -> list[dict]:
    """labels: (membership id, code text, normalized) per application of a code to a highlight."""
    count: Counter[str] = Counter()
    people: dict[str, set[int]] = defaultdict(set)
    variants: dict[str, Counter[str]] = defaultdict(Counter)
    for membership_id, text, normalized in labels:
        count[normalized] += 1
        people[normalized].add(membership_id)
        variants[normalized][text] += 1
    if not count:
        return []
    most = max(count.values())
    out = []
    for key, n in count.items():
        label = sorted(variants[key].items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        # Font size for the word cloud: 0.9rem .. 2.6rem by the square root of the share.
        size = round(0.9 + 1.7 * math.sqrt(n / most), 2)
        out.append({"label": label, "count": n, "participants": len(people[key]), "size": size})
    out.sort(key=lambda r: (-r["count"], r["label"].casefold()))
    return out


def build(inputs: dict, progress: Callable[[int], None] = lambda p: None) -> dict:
    conversations = inputs["conversations"]
    documents = ["\n".join(inputs["texts"].get(c.id, [])) for c in conversations]
    progress(20)
    overall, per_doc = topics(documents)
    for topic in overall:  # whose conversations each topic comes from (who may see it: see TOPIC_MIN_PEOPLE)
        docs = [conversations[i] for i in topic.pop("documents")]
        topic["owners"] = sorted({c.owner_id for c in docs if not c.is_baseline})
        topic["baseline"] = any(c.is_baseline for c in docs)
        topic["conversation_ids"] = sorted(c.id for c in docs)
    progress(60)
    labels = label_frequencies(inputs["labels"])
    progress(75)
    conv_rows = [
        {"id": c.id, "owner": c.owner.pseudonym, "owner_id": c.owner_id, "is_baseline": c.is_baseline, "title": c.title,
         "turns": inputs["turns"].get(c.id, 0), "keywords": per_doc[i]}
        for i, c in enumerate(conversations)
    ]
    codes_by_member: dict[int, list[dict]] = defaultdict(list)
    for membership_id, text, uses in inputs["codes"]:
        codes_by_member[membership_id].append({"text": text, "uses": uses})
    participants = []
    for m in inputs["participants"]:
        own = [c for c in conversations if c.owner_id == m.id and not c.is_baseline]
        participants.append({
            "membership_id": m.id,
            "pseudonym": m.pseudonym,
            "conversations": len(own),
            "turns": sum(inputs["turns"].get(c.id, 0) for c in own),
            "keywords": sorted({k for c in conv_rows if c["owner"] == m.pseudonym and not c["is_baseline"]
                                for k in c["keywords"]})[:12],
            "annotations": inputs["annotation_counts"].get(m.id, 0),
            "highlights": inputs.get("highlights", {}).get(m.id, [])[:MAX_HIGHLIGHTS_SHOWN],
            "labels": sorted(codes_by_member.get(m.id, []), key=lambda c: (-c["uses"], c["text"].casefold())),
            "attributes": inputs["attributes"].get(m.id, []),
        })
    progress(95)
    return {
        "format": FORMAT,
        "generated_at": timezone.now().isoformat(),
        # Whose data went in: a summary is not shown once one of them has withdrawn.
        "contributors": sorted({m.id for m in inputs["participants"]} | {c.owner_id for c in conversations}),
        "topics": overall,
        "conversations": conv_rows,
        "labels": labels,
        "participants": participants,
        "counts": {
            "participants": len(participants),
            "conversations": len(conversations),
            "annotations": sum(p["annotations"] for p in participants),
            "labels": len(labels),
        },
    }
