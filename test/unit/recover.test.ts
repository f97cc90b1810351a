import { describe, expect, it } from "vitest";
import { fileBackendDir, isReadableSidecar, withoutPendingOperations } from "../../src/engine/recover.js";

describe("recovery after a killed run", () => {
  it("tells a metadata sidecar cut short (empty or half-written) from a readable one", () => {
    expect(isReadableSidecar("")).toBe(false);
    expect(isReadableSidecar('{"user.cache_control":"","md5":"')).toBe(false);
    expect(isReadableSidecar('{"user.content_type":"application/json","md5":"abc="}\n')).toBe(true);
  });

  it("drops pending operations and names each one", () => {
    const exported = {
      version: 3,
      deployment: {
        resources: [{ urn: "u1" }],
        pending_operations: [
          { type: "creating", resource: { urn: "urn:pulumi:dev::strata::strata:index:LayerTree$docker:index/image:Image::tools", type: "docker:index/image:Image" } },
        ],
      },
    };
    const { exported: cleared, dropped } = withoutPendingOperations(exported);
    expect(dropped).toEqual(["creating docker:index/image:Image tools"]);
    expect(cleared.deployment).toEqual({ resources: [{ urn: "u1" }] });
    expect(withoutPendingOperations({ deployment: { resources: [] } }).dropped).toEqual([]);
  });

  it("finds the folder of a file backend, options and all, and nothing for other backends", () => {
    expect(fileBackendDir("file:///srv/state?metadata=skip")).toBe("/srv/state");
    expect(fileBackendDir("postgres://u:p@127.0.0.1:5432/pulumi")).toBeUndefined();
    expect(fileBackendDir(undefined)).toBeUndefined();
  });
});
