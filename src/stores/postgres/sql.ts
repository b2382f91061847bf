// The postgres.js handles every module of the store works through, and the one conversion of a
// timestamp column to epoch milliseconds.
import type postgres from "postgres";

export type Sql = postgres.Sql<{}>;
export type Tx = postgres.TransactionSql<{}>;

/** A timestamp column as epoch ms (null stays null). */
export const ms = (d: Date | string | null | undefined) => (d == null ? null : new Date(d).getTime());
