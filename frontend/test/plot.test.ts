import { describe, expect, it } from "vitest";
import { type Box, formatValue, linearScale, linePath, niceTicks, xScale, yScale } from "../src/lib/plot";
import { metricSeries, versionMetrics } from "../src/components/model/metrics";

const BOX: Box = { width: 200, height: 100, left: 20, right: 10, top: 10, bottom: 20 };

describe("plot scaling", () => {
  it("maps a domain linearly, and widens a flat one", () => {
    const at = linearScale(0, 10, 100, 0);
    expect(at(0)).toBe(100);
    expect(at(5)).toBe(50);
    expect(at(10)).toBe(0);
    const flat = linearScale(2, 2, 0, 100);
    expect(flat(2)).toBeCloseTo(50, 9);
    expect(linearScale(0, 0, 0, 100)(0)).toBe(50);
  });

  it("makes round ticks that cover the values", () => {
    expect(niceTicks(0.31, 0.78)).toEqual([0.2, 0.4, 0.6, 0.8]);
    expect(niceTicks(0.31, 0.78, 8)).toEqual([0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
    expect(niceTicks(0, 10)).toEqual([0, 5, 10]);
    expect(niceTicks(1.2, 1.2).length).toBeGreaterThan(1);
    expect(niceTicks(Number.NaN, 1)).toEqual([]);
    const t = niceTicks(2.1, 3.4, 4);
    expect(t[0]).toBeLessThanOrEqual(2.1);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(3.4);
  });

  it("puts the y range inside the box, high values at the top", () => {
    const y = yScale([{ name: "loss", points: [{ x: 1, y: 0.5 }, { x: 2, y: 1 }, { x: 3, y: null }] }], BOX)!;
    expect(y.at(y.min)).toBe(BOX.height - BOX.bottom);
    expect(y.at(y.max)).toBe(BOX.top);
    expect(y.min).toBeLessThanOrEqual(0.5);
    expect(y.max).toBeGreaterThanOrEqual(1);
    expect(yScale([{ name: "none", points: [{ x: 1, y: null }] }], BOX)).toBeNull();
  });

  it("spaces versions across the box; one version sits in the middle", () => {
    const x = xScale([{ name: "s", points: [{ x: 3, y: 1 }, { x: 1, y: 1 }, { x: 2, y: 1 }] }], BOX)!;
    expect(x.ticks).toEqual([1, 2, 3]);
    expect(x.at(1)).toBe(BOX.left);
    expect(x.at(3)).toBe(BOX.width - BOX.right);
    const one = xScale([{ name: "s", points: [{ x: 4, y: 1 }] }], BOX)!;
    expect(one.at(4)).toBe((BOX.left + BOX.width - BOX.right) / 2);
  });

  it("draws a path in version order, broken where a value is missing", () => {
    const id = (v: number) => v;
    expect(linePath([{ x: 2, y: 5 }, { x: 1, y: 4 }], id, id)).toBe("M1 4L2 5");
    expect(linePath([{ x: 1, y: 1 }, { x: 2, y: null }, { x: 3, y: 3 }, { x: 4, y: 4 }], id, id)).toBe("M1 1M3 3L4 4");
    expect(linePath([], id, id)).toBe("");
  });

  it("formats values with 4 significant digits", () => {
    expect(formatValue(0.123456)).toBe("0.1235");
    expect(formatValue(2)).toBe("2");
    expect(formatValue(null)).toBe("—");
  });

  it("reads held-out loss and alignment from a version's metrics", () => {
    const m = versionMetrics({ version: 3, metrics: { heldout: { events: 4, new: { loss: 1.25, alignment: 0.75 }, current: { loss: 2 } }, train: { loss: 0.9, samples: 12 } } });
    expect(m).toEqual({ version: 3, heldoutLoss: 1.25, alignment: 0.75, heldoutEvents: 4, trainLoss: 0.9, trainSamples: 12 });
    expect(versionMetrics({ version: 1, metrics: null }).heldoutLoss).toBeNull();
    expect(versionMetrics({ version: 1, metrics: { heldout: "odd" } }).alignment).toBeNull();
    const series = metricSeries([m, { ...m, version: 1, heldoutLoss: 2 }]);
    expect(series[0]!.points.map((p) => p.x)).toEqual([1, 3]);
    expect(series[1]!.name).toBe("Alignment");
  });
});
