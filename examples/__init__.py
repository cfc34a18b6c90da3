"""`make example`: real `caffe train` runs comparing FocalLossLayer with Caffe's own
SigmoidCrossEntropyLoss on two problems built from scikit-learn's handwritten digits.

    digits      long-tailed one-vs-all classification (a few classes rare in training)
    digit_grid  dense per-cell prediction on canvases, positives under 1 in 500 logits

Entry point: `python -m examples.run_all [--quick] [--out DIR] [--only NAME]`.
"""
