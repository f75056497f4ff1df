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


def identifier_embedding(components, token: str, class_word: str, spread: float = 1.0, rows: int = 1) -> torch.Tensor:
    """A subject identifier's rows [rows, D]: the class word's row plus seeded Gaussian noise of `spread` times the
    embedding matrix's per-dimension std (spread 0: the class word's row itself, e.g. for rows that train).
    Measured for a frozen row: one equal to the class word's makes "a <sks> circle" read as "a circle circle", so
    the class-prior clips ("a circle ...") and the subject's photos pull the LoRA in opposite directions on nearly
    the same text and it learns neither (identity 0/4 after 200 steps); a distinct row gives
    DreamBooth's "rare identifier" with the class as its neighbour."""
    weight = components.text_encoder.get_input_embeddings().weight.detach()
    base = word_embedding(components.tokenizer, components.text_encoder, class_word)
    seed = int.from_bytes(token.encode()[:8].ljust(8, b"\0"), "little") & (2**63 - 1)
    noise = torch.randn((rows, *base.shape), generator=torch.Generator().manual_seed(seed))
    return base + spread * weight.std(0) * noise.to(base)


class ExtendedEmbedding(torch.nn.Module):
    """The text encoder's input embedding plus rows for added tokens, each token's rows a Parameter of its own:
    a method trains exactly those (the original matrix stays frozen and untouched, and weight decay never
    reaches it). An added token's ids read its rows (also where a small tokenizer's ids fall inside the matrix,
    on rows no token used); every other id reads the original matrix."""

    def __init__(self, base: torch.nn.Embedding):
        super().__init__()
        self.base = base
        self.base_size = base.weight.shape[0]
        self.rows = torch.nn.ParameterDict()
        self.ids: dict[str, list[int]] = {}
        # key -> (anchor rows, weight): the token reads anchor + weight * (rows - anchor), an adapter's weight
        self.blend: dict[str, tuple[torch.Tensor, float]] = {}

    @property
    def weight(self) -> torch.Tensor:  # the original matrix, for readers such as word_embedding
        return self.base.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.base(input_ids.clamp(max=self.base_size - 1))
        added = input_ids >= self.base_size
        known = torch.zeros_like(added)
        for key, ids in self.ids.items():
            for row, token_id in enumerate(ids):
                hit = input_ids == token_id
                if hit.any():
                    value = self.rows[key][row]
                    if key in self.blend:
                        anchor, weight = self.blend[key]
                        value = anchor[row] + weight * (value - anchor[row])
                    out = torch.where(hit[..., None], value.to(out.dtype), out)
                    known |= hit
        if (added & ~known).any():
            raise CustomvidError("the prompt uses a token whose adapter was detached")
        return out


def _key(token: str) -> str:
    return token.strip("<>").replace("-", "_")  # ParameterDict keys cannot hold every character


@dataclass
class AddedTokens:
    """What `add_tokens` changed, to undo it."""

    tokenizer: object  # the tokenizer object before the tokens were added (left untouched)
    tokens: dict[str, int]  # token -> number of rows


def add_tokens(components, rows: dict[str, torch.Tensor]) -> AddedTokens:
    """Add each token with its [n, D] rows (frozen until a method sets requires_grad); returns the undo record.
    Multi-row tokens are expanded in prompts by Components.encode_prompt."""
    encoder = components.text_encoder
    embed = encoder.get_input_embeddings()
    if not isinstance(embed, ExtendedEmbedding):
        embed = ExtendedEmbedding(embed)
        encoder.set_input_embeddings(embed)
    # copy on write: the tokenizer object may be shared with other components; this one gets its own
    saved = AddedTokens(components.tokenizer, {})
    components.tokenizer = copy.deepcopy(components.tokenizer)
    for token, value in rows.items():
        check_token(token, components.tokenizer)
        value = value.reshape(-1, embed.weight.shape[1])
        pieces = piece_names(token, len(value))
        components.tokenizer.add_tokens(pieces)
        ids = components.tokenizer.convert_tokens_to_ids(pieces)
        embed.rows[_key(token)] = torch.nn.Parameter(value.detach().clone().to(embed.weight), requires_grad=False)
        embed.ids[_key(token)] = ids
        saved.tokens[token] = len(value)
        if len(value) > 1:
            components.token_pieces[token] = len(value)
    return saved


def remove_tokens(components, saved: AddedTokens) -> None:
    embed = components.text_encoder.get_input_embeddings()
    for token in saved.tokens:
        del embed.rows[_key(token)]
        del embed.ids[_key(token)]
        embed.blend.pop(_key(token), None)
        components.token_pieces.pop(token, None)
    if not embed.ids:  # the last one: the original module and tokenizer come back
        components.text_encoder.set_input_embeddings(embed.base)
        components.tokenizer = saved.tokenizer


def token_parameter(components, token: str) -> torch.nn.Parameter:
    return components.text_encoder.get_input_embeddings().rows[_key(token)]


def token_rows(components, token: str) -> torch.Tensor:
    return token_parameter(components, token).detach().clone()


def load_token_rows(components, token: str, saved: dict[str, torch.Tensor]) -> None:
    """Set `token`'s rows from an adapter file's tokens (`AdapterFiles.tokens`), which must hold it."""
    if token not in saved:
        raise CustomvidError(f"the token {token!r} has no embedding in the adapter")
    set_token_rows(components, token, saved[token])


def set_token_rows(components, token: str, value: torch.Tensor) -> None:
    param = token_parameter(components, token)
    if tuple(value.shape) != tuple(param.shape):
        raise CustomvidError(f"token {token!r} has rows {list(value.shape)}, the adapter expects {list(param.shape)}")
    with torch.no_grad():
        param.copy_(value.to(param))


def set_token_weight(components, token: str, anchor: torch.Tensor, weight: float) -> None:
    """Make `token` read anchor + weight * (rows - anchor): 1 is the trained rows, 0 the anchor (e.g. the class
    word), so a token adapter follows a weight schedule like a LoRA does."""
    embed = components.text_encoder.get_input_embeddings()
    if weight == 1.0:
        embed.blend.pop(_key(token), None)
    else:
        embed.blend[_key(token)] = (anchor.to(embed.weight), float(weight))
