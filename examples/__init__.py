"""`make example`: real `caffe train` runs of FocalLossLayer (and SoftmaxFocalLossLayer), one
package per example:

    digits/      long-tailed one-vs-all classification (a demonstration of the layer)
    digit_grid/  dense per-cell prediction on canvases (a demonstration, sigmoid and softmax)
    detector/    RetinaNet-lite on textured digit scenes: FL against α-balanced CE, with and
                 without the prior bias, over seeds, with confidence intervals
    common/      what they share

Entry point: `python -m examples.run_all [--quick] [--out DIR] [--only NAME]`.
"""
