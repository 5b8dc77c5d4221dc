"""The admin's topology diagram as boxes and links, computed from Node rows and a Plan (no queries)."""

BOX_WIDTH, BOX_HEIGHT, GAP = 170, 86, 50


def cluster_topology(nodes, plan):
    """Boxes and links for the admin's topology diagram: every node, the plan's stages in pipeline
    order with their layer ranges, and the hops hidden states take between them."""
    stage_of = {stage["node"]: (index, stage["layers"]) for index, stage in enumerate(plan.stages if plan else [])}
    boxes = []
    ordered = sorted(nodes, key=lambda node: (stage_of.get(node.name, (len(stage_of), None))[0], node.name))
    for position, node in enumerate(ordered):
        index, layers = stage_of.get(node.name, (None, None))
        boxes.append(
            {
                "node": node,
                "x": 10 + position * (BOX_WIDTH + GAP),
                "y": 30,
                "stage": None if index is None else index + 1,
                "layers": None if layers is None else f"layers {layers[0]}–{layers[1] - 1}",
                "stats": node.stage_stats,
            }
        )
    by_name = {box["node"].name: box for box in boxes}
    links = []
    route = plan.stages if plan else []
    for source, target in zip(route, route[1:]):
        if source["node"] in by_name and target["node"] in by_name:
            start, end = by_name[source["node"]], by_name[target["node"]]
            links.append(
                {
                    "x1": start["x"] + BOX_WIDTH,
                    "x2": end["x"],
                    "y": start["y"] + BOX_HEIGHT // 2,
                    "bytes": int(start["stats"].get("bytes_out", 0)),
                }
            )
    width = 20 + len(boxes) * (BOX_WIDTH + GAP)
    return {"boxes": boxes, "links": links, "width": width, "box_width": BOX_WIDTH, "box_height": BOX_HEIGHT}
