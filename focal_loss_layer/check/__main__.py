"""python -m focal_loss_layer.check"""
import sys

from .cli import main

sys.exit(main())
