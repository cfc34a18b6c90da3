"""The SSD-lite example's printed table (Markdown, as the docs show it), from results["ssd"]."""
from typing import Dict


def table(results: Dict) -> str:
    schedule = results["schedule"]
    test = results["data"]["test"]["scenes"]
    lines = [
        f"| ssd: SSD-lite, {results['solver']}, {schedule['max_iter']} iterations: "
        f"{results['demonstration']} | loss layer | conf loss | base_lr | training loss, "
        "first → last | test AP | AP50 | AP75 | detections per image | training |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for arm in results["arms"].values():
        t = arm["test"]
        lines.append(
            f"| {arm['label']} | `{arm['layer']}` | {arm['summary']} | {arm['base_lr']:g} | "
            f"{arm['first_train_loss']:.3g} → {arm['last_train_loss']:.3g} | {t['AP']:.3f} | "
            f"{t['AP50']:.3f} | {t['AP75']:.3f} | {t['detection_output']['per_image']:.1f} | "
            f"{arm['train_seconds']:.0f} s |")
    detection = results["net"]["detection_output"]
    lines.append(
        f"\nscored on {test} test scenes: DetectionOutput (NMS {detection['nms_threshold']:g}, "
        f"confidence ≥ {detection['confidence_threshold']:g}, best {detection['keep_top_k']} per "
        "image; softmax scores for MultiBoxLoss's net, sigmoid scores for the LOGISTIC net), then "
        "pycocotools; the training losses are not comparable (different losses)")
    return "\n".join(lines)
