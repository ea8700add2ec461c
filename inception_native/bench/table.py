"""Benchmark tables: fixed-width text printed group by group as the figures come in, then notes
and a legend that explains every column."""


class Table:
    """columns: [(title, format spec, cell)], cell(row, group) -> text, group being the rows
    measured together (a contender's row may refer to another's); legend: lines; notes(rows):
    lines about the whole run, printed before the legend."""

    def __init__(self, columns, legend, notes=lambda rows: []):
        self.columns, self.legend, self.notes = columns, legend, notes

    def header(self):
        line = " ".join(f"{title:{spec}}" for title, spec, _ in self.columns)
        return f"{line}\n{'-' * len(line)}"

    def lines(self, group):
        return [" ".join(f"{cell(r, group):{spec}}" for _, spec, cell in self.columns) for r in group]

    def footer(self, rows):
        return "\n".join(["", *self.notes(rows), *self.legend])

    def format(self, rows):
        return "\n".join([self.header(), *self.lines(rows), self.footer(rows)])
