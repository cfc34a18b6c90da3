"""The losses compared: each has a solver prototxt/<example>/solver_<key>.prototxt and a train
net prototxt/<example>/train_<key>.prototxt, identical but for the loss layer."""
LOSSES = {
    "focal": "focal γ=2",
    "focal_alpha": "focal γ=2 α=0.25",
    "sigmoid_ce": "sigmoid CE (Caffe)",
}
# The run whose outputs the loss-share figure is drawn for first: the paper's setting.
PAPER_SETTING = "focal_alpha"
