"""Hub: model card rendering and one-commit publishing of run folders (names load on first use)."""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "backbone_card": ["is_backbone_folder", "render_backbone_card"],
    "card": ["render_card", "template_path"],
    "push": ["HubPushError", "files_to_upload", "push_run"],
})
