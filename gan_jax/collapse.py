"""The collapse guard: notices when an adversarial run's discriminator has won (host side, pure).

A discriminator that separates real from generated images perfectly drives its real/fake loss to
0, and the generator's loss then climbs epoch after epoch (the Improved-GAN SGAN with optax's
default Adam epsilon does this within ~10 epochs and never recovers; its accuracy falls to the
supervised baseline's). `collapsing` tests one member's per-epoch losses for that pattern.
"""

from __future__ import annotations

from collections.abc import Sequence

EPOCHS = 3  # consecutive epochs the pattern must hold
D_LOSS_MAX = (
    0.05  # "near 0": a real/fake loss below this is a discriminator that is almost always right
)


def collapsing(
    d_losses: Sequence[float],
    g_losses: Sequence[float],
    *,
    epochs: int = EPOCHS,
    d_loss_max: float = D_LOSS_MAX,
) -> bool:
    """Whether the last `epochs` epochs show a won discriminator and a generator falling behind.

    Args:
      d_losses: per-epoch mean real/fake loss of the discriminator, oldest first (≥ 0).
      g_losses: the generator's per-epoch mean loss, the same epochs.
      epochs: how many of the latest epochs must show the pattern (≥ 2).
      d_loss_max: the real/fake loss counts as near 0 below this.
    Returns:
      True when, in each of the last `epochs` epochs, the real/fake loss was below `d_loss_max`
      and the generator loss rose from one epoch to the next; False with fewer epochs.
    """
    if len(d_losses) != len(g_losses):
        raise ValueError(
            f"need one generator loss per discriminator loss, got {len(d_losses)} and "
            f"{len(g_losses)}"
        )
    if len(d_losses) < epochs:
        return False
    d, g = d_losses[-epochs:], g_losses[-epochs:]
    return all(x < d_loss_max for x in d) and all(b > a for a, b in zip(g, g[1:], strict=False))


def newly_collapsing(d_losses: Sequence[float], g_losses: Sequence[float], **kwargs) -> bool:
    """`collapsing` now but not one epoch earlier: true once per episode, so a warning is not
    repeated every epoch (nor again when a run resumes)."""
    return collapsing(d_losses, g_losses, **kwargs) and not collapsing(
        d_losses[:-1], g_losses[:-1], **kwargs
    )


def warning(
    epoch: int,
    member: dict,
    d_key: str,
    g_key: str,
    d_losses: Sequence[float],
    g_losses: Sequence[float],
    epochs: int = EPOCHS,
) -> str:
    """The one-line warning for a member (`member` names its data seed, if any)."""
    who = "".join(f" ({k.replace('_', ' ')} {v})" for k, v in member.items())
    return (
        f"collapse at epoch {epoch}{who}: {d_key} {d_losses[-1]:.4f} has stayed below {D_LOSS_MAX} "
        f"for {epochs} epochs while {g_key} rose {g_losses[-epochs]:.4g} -> {g_losses[-1]:.4g}: "
        "the discriminator has won and the generator no longer helps; stop and change the recipe "
        "(learning rate, Adam epsilon) or the seed"
    )
