"""Write docs/conversions.md from the conversion matrix declared in the code.

Run ``python docs/scripts/conversions.py``; ``tests/test_docs_conversions.py``
fails when the page and the code disagree, so the page cannot drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

from napari_nsclc import conversion, model, registry

PAGE = Path(__file__).resolve().parents[1] / "conversions.md"
WORDS = {"exact": "exact", "lossy": "lossy", "refused": "no"}

INTRO = """\
# Conversions: what each writer keeps

`napari-nsclc convert SRC --to FORMAT -o DST` (and File > Save Layers in napari) first plans the conversion and
says, before anything is written, what every kind of annotation becomes, counted per class:

```
$ napari-nsclc convert MIDOG.json --to voc -o midog-voc
MIDOG.json (midog) -> voc: lossy
  4,435 cells stored as boxes (not mitotic figure 2,714, mitotic figure 1,721): boxes of the cell's size
  lost: fields PASCAL VOC XML does not keep: id (4,435)
wrote 201 file(s) to midog-voc
```

Every pair of a reader and a writer has one verdict:

- **exact**: reading what was written gives back the same objects, classes, ids, coordinates and extra fields
  (masks: the same pixels);
- **lossy**: something changes or is not kept; what, and how many objects, is printed before writing.
  `--strict` turns any loss into a refusal;
- **no** (refused): nothing is written, the command says why in one line and exits with code 2.

The table below is for a file holding every kind its format can hold. A file holding fewer kinds can convert better
(an ASAP file without points loses none) and, when none of its kinds is one the writer holds, is refused as holding
nothing to write. COCO and VOC record each image's width and height, and drawing objects into a mask needs them: an
annotation file whose image or slide is not beside it (named like it) is refused by those writers.

The table is generated from the declarations in the code (`napari_nsclc/conversion.py` and each format's
`FormatSpec`) by `docs/scripts/conversions.py`, and every cell is checked by `tests/test_conversion_matrix.py` on a
fixture of every layout and on the real sample files: the output is read back by an independent reader
(pycocotools, defusedxml with a schema check, shapely, Pillow, h5py, csv) and by napari-nsclc, and compared object
by object.
"""


def matrix_markdown(cells) -> str:
    readers = sorted({r for r, _ in cells})
    writers = sorted({w for _, w in cells})
    lines = ["| reads \\\\ writes | " + " | ".join(writers) + " |", "|---" * (len(writers) + 1) + "|"]
    for reader in readers:
        row = [f"**{w}**" if cells[(reader, w)].verdict == "exact" and w == reader else WORDS[cells[(reader, w)].verdict]
               for w in writers]
        lines.append(f"| **{reader}** | " + " | ".join(row) + " |")
    return "\n".join(lines)


def details(cells) -> str:
    out = []
    for reader in sorted({r for r, _ in cells}):
        spec = registry.get_format(reader)
        out.append(f"### {reader}: {spec.title}\n")
        kinds = ", ".join(conversion.KINDS[k] for k in conversion.KINDS if k in spec.produces) or "images only"
        out.append(f"Holds: {kinds}.\n")
        refused = []
        for writer in sorted({w for _, w in cells}):
            cell = cells[(reader, writer)]
            if cell.verdict == "refused":
                refused.append(writer)
                continue
            why = "; ".join(cell.why)
            unless = f" Refused {cell.unless}." if cell.unless else ""
            out.append(f"- **{writer}**: {cell.verdict}{': ' + why if why else ''}.{unless}")
        own = [w for w in refused if cells[(reader, w)].why == (conversion.OWN_DATASET_ONLY,)]
        for writer in refused:
            if writer not in own:
                out.append(f"- **{writer}**: refused: {'; '.join(cells[(reader, writer)].why)}.")
        if own:
            out.append(f"- refused by {', '.join(own)}: each writes back only what was read from its own dataset.")
        out.append("")
    return "\n".join(out)


def conventions() -> str:
    """The geometry conventions as the model's docstring states them, its table turned into markdown."""
    text = model.__doc__
    body = text[text.index("Geometry conventions of the files") :].split("\n", 2)[2]  # below the heading
    lines = body.splitlines()
    borders = [i for i, line in enumerate(lines) if line.startswith("====")]
    starts = [0, *(i for i in range(1, len(lines[borders[0]])) if lines[borders[0]][i - 1 : i + 1] == " =")]
    table = []
    for line in lines[borders[0] : borders[-1] + 1]:
        if line.startswith("===="):
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        table += ["| " + " | ".join(cells) + " |"] + (["|---" * len(cells) + "|"] if not table else [])
    before = " ".join(line.strip() for line in lines[: borders[0]] if line.strip())
    after = "\n".join(lines[borders[-1] + 1 :]).strip()
    text = before + "\n\n" + "\n".join(table) + "\n\n" + after + "\n"
    return text.replace(":func:", "").replace("``", "`")


def page() -> str:
    cells = conversion.matrix()
    return "\n".join([
        INTRO,
        "## The matrix\n",
        "Rows are what napari-nsclc reads, columns what it writes (a dataset's own format in bold).\n",
        matrix_markdown(cells),
        "",
        "## Cell by cell\n",
        details(cells),
        "## Geometry conventions\n",
        conventions(),
    ])


def main() -> int:
    PAGE.write_text(page())
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
