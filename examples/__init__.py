"""`make example`: real `caffe train` runs of FocalLossLayer (and SoftmaxFocalLossLayer), one
package per example:

    digits/      long-tailed one-vs-all classification (a demonstration of the layer)
    digit_grid/  dense per-cell prediction on canvases (a demonstration, sigmoid and softmax)
    detector/    RetinaNet-lite on textured digit scenes (FL, α-balanced CE, OHEM, FL γ=1)
    ssd/         SSD-lite: C++ MultiBoxLoss and MultiBoxFocalLossLayer in one SSD net
    study/       the detector study (make sweep, make study): both nets trained as the paper
                 trains, a rate per arm, over seeds, with intervals
    common/      what they share

Entry points: `python -m examples.run_all [--quick] [--out DIR] [--only NAME]` (make example),
`python -m examples.study [--sweep] [--quick] [--out DIR]` (make study, make sweep).
"""
