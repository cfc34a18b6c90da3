"""The losses compared: each has a solver prototxt/<example>/solver_<key>.prototxt and a train
net prototxt/<example>/train_<key>.prototxt, identical but for the loss layer. Every example runs
LOSSES; an example's EXTRA_LOSSES (digit_grid: SOFTMAX_LOSSES, an 11-class softmax head, its own
deploy net) run after them."""
LOSSES = {
    "focal": "focal γ=2",
    "focal_alpha": "focal γ=2 α=0.25",
    "sigmoid_ce": "sigmoid CE (Caffe)",
}
SOFTMAX_LOSSES = {
    "softmax_focal": "softmax focal γ=2",
    "softmax": "SoftmaxWithLoss (Caffe)",
}
LABELS = {**LOSSES, **SOFTMAX_LOSSES}
# The run whose outputs the loss-share figure is drawn for first: the paper's setting.
PAPER_SETTING = "focal_alpha"


def losses_of(example) -> list:
    """The loss keys an example module runs, in order."""
    return list(LOSSES) + list(getattr(example, "EXTRA_LOSSES", ()))


def deploy_name(key: str) -> str:
    """The deploy prototxt (in prototxt/<example>/) that a run's weights fit."""
    return "deploy_softmax.prototxt" if key in SOFTMAX_LOSSES else "deploy.prototxt"
