"""New prompt tokens: a token added to the tokenizer, with its own embedding row(s) in the text encoder.

Used by the subject LoRA (its identifier) and the identity tokens. A token may stand for several rows: "<sks>"
with 4 rows expands to "<sks>_0 <sks>_1 <sks>_2 <sks>_3" in prompts (Magic-Me's extended ID tokens). Adding
changes no other prompt's encoding (other rows are untouched); removing restores the tokenizer and the
embedding matrix as they were.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import torch

from customvid.errors import CustomvidError

TOKEN_RE = re.compile(r"^<[A-Za-z0-9_\-]+>$")


def check_token(token: str, tokenizer) -> None:
    if not token or not TOKEN_RE.match(token):
        raise CustomvidError(f"token {token!r} must look like <name> (letters, digits, _ or -), e.g. <sks>")
    if token in tokenizer.get_vocab() or any(t.startswith(token) for t in tokenizer.get_added_vocab()):
        raise CustomvidError(f"token {token!r} is already known to the tokenizer; pick another name")


def piece_names(token: str, rows: int) -> list[str]:
    return [token] if rows == 1 else [f"{token}_{i}" for i in range(rows)]


def expand_prompt(prompt: str, tokens: dict[str, int]) -> str:
    """Replace each multi-row token by its pieces ("<sks>" -> "<sks>_0 <sks>_1 ...")."""
    for token, rows in tokens.items():
        if rows > 1:
            prompt = prompt.replace(token, " ".join(piece_names(token, rows)))
    return prompt


def word_embedding(tokenizer, text_encoder, word: str) -> torch.Tensor:
    """Mean input-embedding row of `word`'s word pieces (the usual init of a new token from its class word)."""
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if not ids:
        raise CustomvidError(f"class word {word!r} has no tokens")
    return text_encoder.get_input_embeddings().weight[ids].detach().mean(0)


def identifier_embedding(components, token: str, class_word: str, spread: float = 1.0) -> torch.Tensor:
    """A subject identifier's row for a frozen text encoder: the class word's row plus seeded Gaussian noise of
    `spread` times the embedding matrix's per-dimension std. Measured: a row equal to the class word's makes
    "a <sks> circle" read as "a circle circle", so the class-prior clips ("a circle ...") and the subject's
    photos pull the LoRA in opposite directions on nearly the same text and it learns neither (identity 0/4
    after 200 steps); a distinct row gives DreamBooth's "rare identifier" with the class as its neighbour."""
    weight = components.text_encoder.get_input_embeddings().weight.detach()
    base = word_embedding(components.tokenizer, components.text_encoder, class_word)
    seed = int.from_bytes(token.encode()[:8].ljust(8, b"\0"), "little") & (2**63 - 1)
    noise = torch.randn(base.shape, generator=torch.Generator().manual_seed(seed))
    return base + spread * weight.std(0) * noise.to(base)


@dataclass
class AddedTokens:
    """What `add_tokens` changed, to undo it."""

    tokenizer: object  # the tokenizer object before the tokens were added (left untouched)
    vocab_size: int
    tokens: dict[str, int]  # token -> number of rows


def add_tokens(components, rows: dict[str, torch.Tensor]) -> AddedTokens:
    """Add each token with its [n, D] rows; returns the undo record. The prompt encoder expands the pieces."""
    # copy on write: the tokenizer object may be shared with other components; this one gets its own
    saved = AddedTokens(components.tokenizer, len(components.tokenizer), {})
    components.tokenizer = copy.deepcopy(components.tokenizer)
    embed = components.text_encoder.get_input_embeddings()
    for token, value in rows.items():
        value = value.reshape(-1, embed.weight.shape[1])
        check_token(token, components.tokenizer)
        pieces = piece_names(token, len(value))
        components.tokenizer.add_tokens(pieces)
        saved.tokens[token] = len(value)
    components.text_encoder.resize_token_embeddings(len(components.tokenizer), mean_resizing=False)
    embed = components.text_encoder.get_input_embeddings()
    with torch.no_grad():
        for token, value in rows.items():
            ids = components.tokenizer.convert_tokens_to_ids(piece_names(token, saved.tokens[token]))
            embed.weight[ids] = value.reshape(len(ids), -1).to(embed.weight)
    return saved


def token_ids(components, token: str, rows: int) -> list[int]:
    return components.tokenizer.convert_tokens_to_ids(piece_names(token, rows))


def remove_tokens(components, saved: AddedTokens) -> None:
    components.tokenizer = saved.tokenizer
    components.text_encoder.resize_token_embeddings(saved.vocab_size, mean_resizing=False)


def token_rows(components, token: str, rows: int) -> torch.Tensor:
    return components.text_encoder.get_input_embeddings().weight[token_ids(components, token, rows)].detach().clone()
