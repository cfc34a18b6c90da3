"""`python -m focal_loss_layer.check` (or `focal-loss-check`): certifies FocalLossLayer and
SoftmaxFocalLossLayer in whatever Caffe this Python imports, and exits 0 only when every row
passes. One module a job:

    cli         options, the header (where pycaffe came from, the build's mode), running the rows
    report      a row's result and the table
    nets        prototxt text for layer types every Caffe has, and caffe.Net from it
    cases       the inputs and settings each layer is checked on, and the numpy core's answer
    agreement   forward and backward through caffe.Net against the numpy core
    gradients   central differences: the numpy core in float64, and the net's own loss
    topologies  the diff contract in Caffe's topologies, against Caffe's own losses at γ = 0
    tool        the `caffe` command-line tool: `caffe time` with the PYTHONPATH it needs
    gpu         whether this build can run in GPU mode (probed in a child process)
"""
