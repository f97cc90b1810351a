/** Runs in every unit test file: temp catalogs go when the file is done. */
import { afterAll } from "vitest";
import { removeScratch } from "./catalog.js";

afterAll(removeScratch);
