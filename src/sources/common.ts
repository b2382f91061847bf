// Config pieces shared by every source's schema.
import * as v from "valibot";

export const MarketSchema = v.picklist(["WSE", "NYSE"], "expected WSE or NYSE");
export const TsFormatSchema = v.picklist(["auto", "iso", "yyyymmdd", "epoch_s", "epoch_ms"], "expected auto, iso, yyyymmdd, epoch_s or epoch_ms");
